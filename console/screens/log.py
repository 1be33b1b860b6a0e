"""The send journal as it happens: journal rows polled every half second, newest at the bottom.

Enter opens what a line is about: its message, in its mailing's detail (filtered to it, its attempts
shown); c opens its client. Up/k (or a click) puts a cursor on a line and pauses following; space
follows again (and the newest line is the one meant)."""
import re

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.widgets import Header, RichLog, Static

from console.exporting import ExportsView
from console.format import local_time, one_line, outcome_text
from console.screens.client import ClientScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.widgets import FilterBar, JournalLog, KeyFooter
from console.workers import db_work, deliver, notify_literal
from domain import stats, times
from domain.vocabulary import status_label

MAX_LINES = 2000
FILTER_RE = re.compile(r"(mailing|message|msg|client|m|c|#)\s*[=:]?\s*(\d+)", re.I)
KINDS = {"mailing": "mailing", "m": "mailing", "message": "message", "msg": "message",
         "#": "message", "client": "client", "c": "client"}


def parse_filter(text):
    """'m 3', 'mailing=3 client:5', '#17' -> {'mailing': 3, 'client': 5, 'message': 17}.
    Raises ValueError on anything else."""
    text = text.strip()
    found, rest = {}, text
    for match in FILTER_RE.finditer(text):
        found[KINDS[match.group(1).lower()]] = int(match.group(2))
        rest = rest.replace(match.group(0), " ", 1)
    if rest.strip():
        raise ValueError(f"cannot read {rest.strip()!r}; use mailing N, client N, message N (or m N, c N, #N)")
    return found


def format_attempt(a):
    line = Text(no_wrap=True)
    line.append(local_time(a.at, fmt="%H:%M:%S.%f")[:-3], style="dim")
    line.append(f"  message {a.message_id:<8}", style="bold")
    line.append(f" mailing {a.mailing_id:<5} client {a.client_id if a.client_id is not None else '-':<8} ")
    line.append_text(outcome_text(f"{a.outcome:<9}"))
    line.append(f" http {a.http_status if a.http_status is not None else '-':<4}")
    line.append(f" {a.latency_ms:6.0f} ms" if a.latency_ms is not None else "       - ms")
    if a.error:
        line.append("  ")
        line.append_text(one_line(a.error, 200))
    return line


class JournalView:
    """The journal as the log shows it, filter applied, but whole (the log keeps its last MAX_LINES
    lines), for `x`: see console.exporting."""

    def __init__(self, flt):
        self.flt = dict(flt)
        self.export_name = "log" + "".join(f"-{kind}-{n}" for kind, n in sorted(self.flt.items()))

    def export_header(self):
        zone = times.operator_zone()
        return ("Journal id", f"At ({zone})", "Message", "Mailing", "Client", "Outcome", "HTTP",
                "Latency ms", "Error", "Consumer")

    def export_pages(self):
        return stats.journal_pages(**self.flt)

    def export_values(self, a):
        return (a.id, a.at, a.message_id, a.mailing_id, a.client_id, status_label(a.outcome), a.http_status,
                None if a.latency_ms is None else round(a.latency_ms, 1), a.error, a.owner)


class LogScreen(ExportsView):
    SUB_TITLE = "Live log"
    AUTO_FOCUS = "#journal"
    BINDINGS = [
        Binding("space", "toggle_follow", "Pause/follow", id="log.pause"),
        Binding("slash", "filter", "Filter", id="log.filter"),
        Binding("escape", "leave_filter", "Clear filter", show=False, id="log.clear_filter"),
        Binding("enter", "open", "Open", id="log.open"),
        Binding("c", "open_client", "Client", id="log.client"),
    ]

    def compose(self):
        yield Header()
        yield FilterBar("filter: mailing N, client N, message N (m 3, c 5, #17)", input_id="log-filter",
                        id="log-filter-bar")
        yield JournalLog(id="journal", max_lines=MAX_LINES, markup=False, highlight=False, wrap=False)
        yield Static("", id="log-status", classes="status")
        yield KeyFooter()

    def on_mount(self):
        self.following = True
        self.flt = {}
        self.last_id = 0
        self.generation = 0  # bumps when the filter changes: stale polls are dropped
        self.shown = 0
        self.ticks = 0
        self.backfilling = True  # no polling until the backfill is shown
        self._backfill()
        self.set_interval(0.5, self._tick)

    def _tick(self):
        self.ticks += 1  # tests wait for ticks, not for guessed seconds
        if self.following and self.is_current and not self.backfilling:
            self._poll(self.generation, self.last_id, dict(self.flt))

    def _status(self):
        state = Text("following", style="bold green") if self.following else Text("paused", style="bold yellow")
        text = Text("journal: ")
        text.append_text(state)
        text.append(f" · {self.shown} line(s) shown (last {MAX_LINES} kept)")
        if self.flt:
            text.append(" · filter " + " ".join(f"{k} {v}" for k, v in self.flt.items()))
        text.append(" · space pauses/follows, / filters, ↑ picks a line, enter opens it, c its client")
        self.query_one("#log-status", Static).update(text)

    @db_work(group="log-backfill")
    def _backfill(self):
        """On opening or a new filter: the latest rows that match (up to the cap)."""
        generation, flt = self.generation, dict(self.flt)
        rows = stats.journal_page(0, **flt, newest=True, limit=MAX_LINES)
        # Nothing matches yet: follow from the journal's end, not from its start.
        last_id = rows[-1].id if rows else stats.last_journal_id()
        deliver(self.app, self._write, generation, rows, last_id, True)

    @db_work(group="log-poll")
    def _poll(self, generation, after_id, flt):
        rows = stats.journal_page(after_id, **flt, limit=MAX_LINES + 1)
        if not rows:
            return
        if len(rows) > MAX_LINES:  # fell behind by more than we keep: show only the latest
            rows = stats.journal_page(after_id, **flt, newest=True, limit=MAX_LINES)
            deliver(self.app, self._write, generation, rows, rows[-1].id, True)
            return
        deliver(self.app, self._write, generation, rows, rows[-1].id, False)

    def _write(self, generation, rows, last_id, reset):
        if generation != self.generation:
            return
        log = self.query_one("#journal", RichLog)
        if reset:
            log.clear()
            self.shown = 0
            self.backfilling = False
        else:
            rows = [row for row in rows if row.id > self.last_id]
            if not rows:
                return
        for row in rows:
            log.write_record(format_attempt(row), row, scroll_end=self.following)
        self.shown = min(MAX_LINES, self.shown + len(rows))
        self.last_id = max(self.last_id, last_id) if not reset else last_id
        self._status()

    def view_export(self):
        return JournalView(self.flt)

    # -- keys -------------------------------------------------------------------------------------

    def action_toggle_follow(self):
        self.following = not self.following
        log = self.query_one("#journal", JournalLog)
        log.auto_scroll = self.following
        if self.following:
            log.set_cursor(None)  # following: the newest line is the one meant
            log.scroll_end(animate=False)
        self._status()

    @on(JournalLog.Browsing, "#journal")
    def _browsing(self, event):
        if self.following:  # the lines stay put while the operator reads them
            self.action_toggle_follow()

    def _current(self):
        row = self.query_one("#journal", JournalLog).current_record()
        if row is None:
            notify_literal(self.app, "no journal line yet", severity="warning")
        return row

    def action_open(self):
        """The line's message in its mailing's detail (filtered to it, with its attempts)."""
        row = self._current()
        if row is not None:
            self.app.push_screen(MailingDetailScreen(row.mailing_id, message_id=row.message_id))

    def action_open_client(self):
        row = self._current()
        if row is None:
            return
        if row.client_id is None:
            notify_literal(self.app, f"message {row.message_id}'s client was deleted", severity="warning")
            return
        self.app.push_screen(ClientScreen(row.client_id))

    def action_filter(self):
        self.query_one(FilterBar).focus_input()

    @on(FilterBar.Applied, "#log-filter-bar")
    def _filter(self, event):
        try:
            flt = parse_filter(event.value)
        except ValueError as exc:
            notify_literal(self.app, exc, severity="warning")
            return
        self._set_filter(flt)
        if event.submitted:  # an escape that cleared the text stays in the input (a second one leaves)
            self.query_one("#journal", RichLog).focus()

    def _set_filter(self, flt):
        self.flt = flt
        self.generation += 1
        self.last_id = 0
        self.backfilling = True
        self._backfill()

    def action_leave_filter(self):
        if not self.query_one(FilterBar).leave(self.query_one("#journal", RichLog)) and self.flt:
            self._set_filter({})  # the text was erased without enter: the filter still applied
