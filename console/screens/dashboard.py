"""What is happening now: live mailings, sends per second, failures, the consumer and its gateway.

Under `mailer run` the simulator and the consumer are the console's children (app.child_processes):
the dashboard polls them in its interval (no SQL) and says when one exited, and that the consumer is
starting until its first heartbeat."""
import dataclasses
import signal
import socket

from rich.text import Text
from textual import on
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Sparkline, Static

from console.format import local_time
from console.screens.mailing_detail import MailingDetailScreen
from console.widgets import MailingTable, KeyFooter
from console.workers import db_work, deliver
from domain import rates, stats
from domain.vocabulary import is_local_gateway, status_label

# The mailings screen's columns but the filter (the dashboard has room for more of the text), and a
# running mailing's expected finish, kept when compact (it is what the dashboard is for).
COLUMNS = ("id", "state", "progress", "failed", "start", "end", "finish", "text")

WINDOW = stats.RATE_WINDOW  # seconds of sends in the sparkline
TOTALS_EVERY = 15  # seconds between reads of the failed total (a scan of the messages)
MAILINGS_TITLE = "Mailings running and scheduled"
CHILD_NAMES = {"simulator": "the local simulator", "consumer": "the consumer `mailer run` started",
               "api": "the HTTP API `mailer run --api` started"}


def exit_status(code):
    """'code 1', or 'code -9: killed by SIGKILL' for a process a signal ended."""
    if code is not None and code < 0:
        try:
            return f"code {code}: killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"code {code}"


def cap_text(caps, short=False):
    """'cap 50 messages/s in all; operator 900: 20/s', or 'no cap'; `short`: 'cap 50/s; op 900: 20/s'
    (the unit named only when it is segments)."""
    if not caps or not short:
        return f"cap {caps.describe()}" if caps else "no cap"
    said = [f"{caps.total:g}/s"] if caps.total is not None else []
    if caps.operators:
        said.append("op " + ", ".join(f"{op}: {rate:g}/s" for op, rate in sorted(caps.operators.items())))
    return "cap " + "; ".join(said) + (f" ({caps.unit})" if caps.unit != rates.MESSAGES else "")


class DashboardScreen(Screen):
    SUB_TITLE = "Dashboard"
    AUTO_FOCUS = "#live-mailings"

    def compose(self):
        yield Header()
        with Horizontal(id="dash-top"):
            # Scrolls rather than cuts: what is wrong comes first, wrapped, and the rest stays reachable.
            with VerticalScroll(classes="panel", id="consumer-panel"):
                yield Label("Consumer", classes="panel-title")
                yield Static("…", id="consumer")
            # The rate, then the cap (said shorter when narrow); first, a cap the consumers apply
            # otherwise than this console's settings, if any. The sparkline takes the lines the text
            # leaves it.
            with Vertical(classes="panel", id="rate-panel"):
                yield Label("Sends per second (last 60 s)", classes="panel-title")
                yield Static("", id="rate-applied")
                yield Sparkline([0] * WINDOW, id="rate")
                yield Static("…", id="rate-summary")
            with Vertical(classes="panel", id="failures-panel"):
                yield Label("Failures", classes="panel-title")
                yield Static("…", id="failures")
        with Vertical(classes="panel", id="mailings-panel"):
            yield Label(MAILINGS_TITLE, classes="panel-title", id="live-title")
            yield MailingTable(COLUMNS, placeholder="nothing running or scheduled", id="live-mailings")
        yield KeyFooter()

    def on_mount(self):
        self._ticks = 0
        self._beaten = set()  # pids on this host seen in a heartbeat: a child consumer past its start
        self._failed_total = None
        self._audiences = stats.AudienceCache()
        self._refresh(True)
        self.set_interval(1.0, self._tick)

    def _tick(self):
        self._ticks += 1
        if self.is_current:
            self._refresh(self._ticks % TOTALS_EVERY == 0)

    def reload(self):
        self._audiences.clear()
        self._refresh(True)

    @db_work(group="dashboard")
    def _refresh(self, with_totals=False):
        # Painted first from the bounded, fast reads; then, when due, the failed total (a scan of the
        # messages) and the scheduled mailings' audiences not counted yet or a while ago (shown as …
        # meanwhile), and painted again.
        deliver(self.app, self.show, stats.dashboard(with_totals=False, audiences=self._audiences))
        failed = stats.failed_total() if with_totals or self._failed_total is None else None
        if (self._audiences.wanted and self._audiences.fill()) or failed is not None:
            snap = stats.dashboard(with_totals=False, audiences=self._audiences)
            deliver(self.app, self.show, dataclasses.replace(snap, failed_total=failed))

    def _put(self, selector, text):
        """Update a panel only when its text changed: an unchanged dashboard is not drawn again."""
        shown = getattr(self, "_shown", None)
        if shown is None:
            shown = self._shown = {}
        if shown.get(selector) != text:
            shown[selector] = text
            self.query_one(selector, Static).update(text)

    def consumer_text(self, snap):
        """The consumer panel: what is wrong first (a gateway pause, a child that exited, a gateway
        not answering, in red, its cause whole), then the consumers and the gateway they send to."""
        now = snap.now
        here = socket.gethostname()
        children = [(child, child.process.poll()) for child in getattr(self.app, "child_processes", ())]
        self._beaten |= {b.pid for b in snap.beats if b.host == here}
        gone = {child.process.pid for child, code in children if code is not None and child.role == "consumer"}
        # A child seen to exit is not alive, however fresh the heartbeat it left.
        alive = [b for b in snap.alive if not (b.host == here and b.pid in gone)]
        starting = [child for child, code in children if child.role == "consumer" and code is None
                    and child.process.pid not in self._beaten]
        text = Text()
        if snap.gateway_pause:
            until, reason = snap.gateway_pause
            text.append(f"⏸ sending paused until {local_time(until, fmt='%H:%M:%S')}: ", style="bold red")
            text.append(reason or "no reason given", style="red")
            text.append("\n")
        for child, code in children:
            if code is not None:
                text.append(f"✖ {CHILD_NAMES.get(child.role, child.role)} exited ({exit_status(code)}); "
                            f"see {child.log}\n", style="bold red")
        health = snap.gateway_health(alive)
        if alive and health.failing:
            text.append(f"✖ gateway not answering since {local_time(health.failing_since, fmt='%H:%M:%S')}",
                        style="bold red")
            if health.failed_at is not None and health.failed_at > health.failing_since:
                text.append(f" (last try {local_time(health.failed_at, fmt='%H:%M:%S')})", style="bold red")
            text.append(": ", style="bold red")
            text.append(health.cause or "no cause given", style="red")
            text.append("\n")
        if alive:
            text.append(f"● {len(alive)} consumer(s) alive\n", style="bold green")
            for b in alive:
                text.append(f"{b.host} pid {b.pid}, beat {(now - b.beat_at).total_seconds():.0f} s ago\n")
        for child in starting:
            text.append(f"◌ consumer starting… (pid {child.process.pid}, started by `mailer run`; "
                        f"log {child.log})\n", style="bold yellow")
        if alive:
            for g in sorted({b.gateway for b in alive}):
                local = is_local_gateway(g)
                text.append("LOCAL gateway: nothing leaves this machine\n" if local
                            else "REAL gateway: messages are delivered\n",
                            style="yellow" if local else "bold red")
                text.append(f"gateway: {g}\n")
            if not health.failing:
                if health.ok_at is not None:
                    text.append(f"✔ gateway answering: last answer {local_time(health.ok_at, fmt='%H:%M:%S')}",
                                style="green")
                else:
                    text.append("gateway not tried yet: nothing sent since the consumer started", style="dim")
        elif not starting:
            text.append("○ no consumer alive", style="bold red")
            text.append("\nnothing is being sent; start one with `mailer consumer` (or `mailer run`)")
            if snap.beats:
                last = snap.beats[0]
                text.append(f"\nlast heartbeat {local_time(last.beat_at, fmt='%Y-%m-%d %H:%M:%S')} "
                            f"from {last.host} pid {last.pid}")
        return text

    def show(self, snap):
        self._put("#consumer", self.consumer_text(snap))

        series = snap.series
        sparkline = self.query_one("#rate", Sparkline)
        if sparkline.data != series:
            sparkline.data = series
        last10 = sum(series[-10:]) / 10
        summary = Text(f"now {series[-1]}/s · 10 s avg {last10:.1f}/s · peak {max(series)}/s\n"
                       f"{sum(series)} sent in the last 60 s\n")
        cap = cap_text(snap.caps)
        if len(cap) > self.query_one("#rate-summary").size.width:  # on one line if it can be
            cap = cap_text(snap.caps, short=True)
        summary.append(cap, style="" if snap.caps else "dim")
        self._put("#rate-summary", summary)
        # consumers configured otherwise than this console
        applied = Text("\n".join(f"⚠ {a.text(snap.caps.unit)}" for a in snap.applied), style="bold yellow")
        self._put("#rate-applied", applied)
        self.query_one("#rate-applied").display = bool(snap.applied)

        outcomes = snap.outcomes
        failures = Text()
        for outcome in ("failed", "retry", "expired", "unknown"):
            n = outcomes.get(outcome, 0)
            failures.append(f"{status_label(outcome):<8} {n:>6} in 60 s\n",
                            style="red" if n and outcome != "retry" else "")
        if snap.failed_total is not None:
            self._failed_total = snap.failed_total
        failures.append(f"failed in all {'…' if self._failed_total is None else self._failed_total:>6}")
        self._put("#failures", failures)

        self.query_one("#live-mailings", MailingTable).show(snap.live)  # newest first
        more = snap.live_total - len(snap.live)
        title = MAILINGS_TITLE
        if more > 0:
            title += f": the newest {len(snap.live):,} of {snap.live_total:,}, and {more:,} more (3: all mailings)"
        if title != getattr(self, "_title", MAILINGS_TITLE):
            self._title = title
            self.query_one("#live-title", Label).update(title)

    @on(DataTable.RowSelected, "#live-mailings")
    def _open(self, event):
        event.stop()
        row = event.data_table.rows_by_key.get(event.row_key.value)
        if row is not None:  # not the "nothing running" line
            self.app.push_screen(MailingDetailScreen(row.id))
