"""What is happening now: live mailings, sends per second, failures, the consumer and its gateway."""
import datetime as dt

import peewee as pw
from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

import models
from console.format import lit, local_time, one_line, parse_iso_z, progress_text, state_text
from console.workers import db_work, deliver

ALIVE_WITHIN = dt.timedelta(seconds=10)
WINDOW = 60  # seconds of sends in the sparkline
LIVE = ("running", "scheduled", "paused")


def snapshot(now=None):
    """Everything the dashboard shows, read in one go (runs in a worker thread)."""
    now = now or models.utcnow()
    since = now - dt.timedelta(seconds=WINDOW)
    A = models.Attempt
    # 'YYYY-MM-DD HH:MM:SS' on both engines (SQLite stores the text; PostgreSQL has a timestamp). The
    # bounds are literals: PostgreSQL does not see substr(at, $1, $2) and substr(at, $3, $4) as the
    # same expression, in the SELECT list and in the GROUP BY.
    second = pw.fn.substr(A.at.cast("text"), pw.SQL("1"), pw.SQL("19")).coerce(False)
    per_second = {str(k)[:19]: n for k, n in A.select(second, pw.fn.COUNT(A.id))
                  .where((A.at >= since) & (A.outcome == "sent")).group_by(second).tuples()}
    series = []
    for i in range(WINDOW, 0, -1):
        key = (now - dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S")
        series.append(per_second.get(key, 0))
    outcomes = dict(A.select(A.outcome, pw.fn.COUNT(A.id)).where(A.at >= since)
                    .group_by(A.outcome).tuples())
    beats = list(models.Heartbeat.select().order_by(models.Heartbeat.beat_at.desc()))
    live_ids = [i for (i,) in models.Mailing.select(models.Mailing.id)
                .where(models.Mailing.state.in_(LIVE)).order_by(models.Mailing.id).tuples()]
    live = [models.mailing_stats(i)[0] for i in live_ids]  # counts of live mailings only (indexed)
    failed_total = models.Message.select().where(models.Message.status == models.FAILED).count()
    return {"now": now, "series": series, "outcomes": outcomes, "beats": beats, "live": live,
            "failed_total": failed_total, "gateway_pause": models.gateway_pause(now)}


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
            yield Label("Mailings running and scheduled", classes="panel-title")
            yield DataTable(id="live-mailings", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self):
        table = self.query_one("#live-mailings", DataTable)
        for label in ("ID", "State", "Progress (sent/total)", "Failed", "Start", "End", "Text"):
            table.add_column(label)
        self._refresh()
        self.set_interval(1.0, self._tick)

    def _tick(self):
        if self.is_current:
            self._refresh()

    def reload(self):
        self._refresh()

    @db_work(group="dashboard")
    def _refresh(self):
        deliver(self.app, self.show, snapshot())

    def show(self, snap):
        now = snap["now"]
        alive = [b for b in snap["beats"] if now - b.beat_at <= ALIVE_WITHIN]
        consumer = Text()
        if snap["gateway_pause"]:
            until, reason = snap["gateway_pause"]
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
            if snap["beats"]:
                last = snap["beats"][0]
                consumer.append(f"\nlast heartbeat {local_time(last.beat_at, fmt='%Y-%m-%d %H:%M:%S')} "
                                f"from {last.host} pid {last.pid}")
        self.query_one("#consumer", Static).update(consumer)

        series = snap["series"]
        self.query_one("#rate", Sparkline).data = series
        last10 = sum(series[-10:]) / 10
        summary = Text(f"now {series[-1]}/s · 10 s avg {last10:.1f}/s · peak {max(series)}/s\n"
                       f"{sum(series)} sent in the last 60 s")
        self.query_one("#rate-summary", Static).update(summary)

        outcomes = snap["outcomes"]
        failures = Text()
        for outcome in ("failed", "retry", "expired", "unknown"):
            n = outcomes.get(outcome, 0)
            failures.append(f"{models.status_label(outcome):<8} {n:>6} in 60 s\n",
                            style="red" if n and outcome != "retry" else "")
        failures.append(f"failed in all {snap['failed_total']:>6}")
        self.query_one("#failures", Static).update(failures)

        table = self.query_one("#live-mailings", DataTable)
        key = None
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for s in reversed(snap["live"]):
            done = s["sent"] + s["failed"] + s["expired"] + s["cancelled"] + s["unknown"]
            table.add_row(lit(s["id"]), state_text(s["state"]), progress_text(s["sent"], done, s["total"], width=12),
                          lit(s["failed"]), lit(local_time(parse_iso_z(s["start"]))),
                          lit(local_time(parse_iso_z(s["end"]))), one_line(s["text"], 56), key=str(s["id"]))
        if key is not None:
            try:
                table.move_cursor(row=table.get_row_index(key))
            except Exception:
                pass
        if not snap["live"]:
            table.add_row(Text("-"), Text("nothing running or scheduled", style="dim"), key="none")

    def on_data_table_row_selected(self, event):
        event.stop()
        key = event.row_key.value if event.row_key is not None else None
        if key and key.isdigit():
            from console.screens.mailing_detail import MailingDetailScreen
            self.app.push_screen(MailingDetailScreen(int(key)))
