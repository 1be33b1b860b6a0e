"""What is happening now: live mailings, sends per second, failures, the consumer and its gateway."""
import dataclasses

from rich.text import Text
from textual import on
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Sparkline, Static

from console.format import local_time
from console.screens.mailing_detail import MailingDetailScreen
from console.widgets import MailingTable, KeyFooter
from console.workers import db_work, deliver
from domain import stats
from domain.vocabulary import status_label

# The mailings screen's columns but the filter: the dashboard has room for more of the text.
COLUMNS = ("id", "state", "progress", "failed", "start", "end", "text")

WINDOW = stats.RATE_WINDOW  # seconds of sends in the sparkline
TOTALS_EVERY = 15  # seconds between reads of the failed total (a scan of the messages)
MAILINGS_TITLE = "Mailings running and scheduled"


class DashboardScreen(Screen):
    SUB_TITLE = "Dashboard"
    AUTO_FOCUS = "#live-mailings"

    def compose(self):
        yield Header()
        with Horizontal(id="dash-top"):
            with Vertical(classes="panel", id="consumer-panel"):
                yield Label("Consumer", classes="panel-title")
                yield Static("…", id="consumer")
            with Vertical(classes="panel", id="rate-panel"):
                yield Label("Sends per second (last 60 s)", classes="panel-title")
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

    def show(self, snap):
        now = snap.now
        alive = snap.alive
        consumer = Text()
        if snap.gateway_pause:
            until, reason = snap.gateway_pause
            consumer.append(f"⏸ sending paused until {local_time(until, fmt='%H:%M:%S')}: ", style="bold red")
            consumer.append(reason or "no reason given")
            consumer.append("\n")
        if alive:
            consumer.append(f"● {len(alive)} consumer(s) alive\n", style="bold green")
            for b in alive:
                consumer.append(f"{b.host} pid {b.pid}, beat {(now - b.beat_at).total_seconds():.0f} s ago\n")
            gateways = sorted({b.gateway for b in alive})
            for g in gateways:
                simulated = g.startswith("local simulator")
                consumer.append("local simulator: nothing leaves this machine\n" if simulated
                                else "REAL gateway: messages are delivered\n",
                                style="yellow" if simulated else "bold red")
                consumer.append(g + "\n")
        else:
            consumer.append("○ no consumer alive", style="bold red")
            consumer.append("\nnothing is being sent; start one with `mailer consumer` (or `mailer run`)")
            if snap.beats:
                last = snap.beats[0]
                consumer.append(f"\nlast heartbeat {local_time(last.beat_at, fmt='%Y-%m-%d %H:%M:%S')} "
                                f"from {last.host} pid {last.pid}")
        self._put("#consumer", consumer)

        series = snap.series
        sparkline = self.query_one("#rate", Sparkline)
        if sparkline.data != series:
            sparkline.data = series
        last10 = sum(series[-10:]) / 10
        summary = Text(f"now {series[-1]}/s · 10 s avg {last10:.1f}/s · peak {max(series)}/s\n"
                       f"{sum(series)} sent in the last 60 s")
        self._put("#rate-summary", summary)

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
