"""Mailings with their state and progress, refreshed every second while anything is live."""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from domain import stats, validation
from domain.vocabulary import LIVE_STATES
import service
from console.screens.confirm import ConfirmScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.widgets import MailingTable
from console.workers import db_work, deliver, notify_literal


class MailingsScreen(Screen):
    SUB_TITLE = "Mailings"
    AUTO_FOCUS = "#mailings-table"
    BINDINGS = [
        Binding("n", "new", "New", id="mailings.new"),
        Binding("e", "edit", "Edit", id="mailings.edit"),
        Binding("p", "pause", "Pause", id="mailings.pause"),
        Binding("r", "resume", "Resume", id="mailings.resume"),
        Binding("c", "cancel", "Cancel", id="mailings.cancel"),
        Binding("enter", "open", "Open", priority=True, id="mailings.open"),
    ]

    def compose(self):
        yield Header()
        yield MailingTable(id="mailings-table")
        yield Static("loading…", id="mailings-status", classes="status")
        yield Footer(compact=True)

    def on_mount(self):
        self.table = self.query_one(MailingTable)
        self.rows = []
        self._live = False
        self._ticks = 0
        self._pending_cursor = None
        self.reload()
        self.set_interval(1.0, self._tick)

    def _tick(self):
        self._ticks += 1
        # every second while something is live, else every 5 s (another process may add one)
        if self.is_current and (self._live or self._ticks % 5 == 0):
            self.reload()

    def on_screen_resume(self):
        self.reload()

    def reload(self):
        self._load()

    @db_work(group="mailings")
    def _load(self):
        deliver(self.app, self._show, list(reversed(stats.all_mailings())))  # newest first

    def _show(self, rows):
        self.rows = rows
        self._live = any(r.state in LIVE_STATES for r in rows)
        cursor, self._pending_cursor = self._pending_cursor, None
        self.table.show(rows, cursor=cursor)
        self._status()

    def _status(self):
        counts = {}
        for r in self.rows:
            counts[r.state] = counts.get(r.state, 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in counts.items()) or "no mailings yet: n creates one"
        text = Text(f"{len(self.rows)} mailing(s): {summary}")
        current = self.table.current_row()
        if current and current.reason:  # e.g. why it paused itself
            text.append(f" · mailing {current.id} {current.state}: ", style="bold")
            text.append(current.reason)
        self.query_one("#mailings-status", Static).update(text)

    @on(DataTable.RowHighlighted, "#mailings-table")
    def _highlighted(self, event):
        if self.rows:
            self._status()

    def current(self):
        row = self.table.current_row()
        if row is None:
            notify_literal(self.app, "no mailing selected", severity="warning")
        return row

    # -- actions ----------------------------------------------------------------------------------

    def action_new(self):
        self.app.push_screen(MailingEditor(), self._saved)

    def action_edit(self):
        row = self.current()
        if row is None:
            return
        if row.state not in LIVE_STATES:
            notify_literal(self.app, f"mailing {row.id} is {row.state}; it cannot change", severity="warning")
            return
        self.app.push_screen(MailingEditor(row), self._saved)

    def _saved(self, mailing):
        if mailing:
            notify_literal(self.app, f"mailing {mailing.id} saved ({mailing.state})")
            self._pending_cursor = mailing.id  # rebuild, then put the cursor on it
            self.reload()

    def action_pause(self):
        self._act("pause")

    def action_resume(self):
        self._act("resume")

    def action_cancel(self):
        row = self.current()
        if row is None:
            return

        def answered(yes):
            if yes:
                self._set_state(row.id, "cancel")

        self.app.push_screen(ConfirmScreen(f"Cancel mailing {row.id}? Its unsent messages will never "
                                           f"be sent.", yes_label="Cancel it"), answered)

    def _act(self, action):
        row = self.current()
        if row is not None:
            self._set_state(row.id, action)

    @db_work(group="mailings-state", exclusive=False)
    def _set_state(self, mailing_id, action):
        try:
            mailing = service.set_mailing_state(mailing_id, action)
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, "; ".join(exc.errors.values()),
                    severity="warning")
            return
        deliver(self.app, notify_literal, self.app, f"mailing {mailing.id} is {mailing.state}")
        deliver(self.app, self.reload)

    def action_open(self):
        row = self.current()
        if row is not None:
            self.app.push_screen(MailingDetailScreen(row.id))

    @on(DataTable.RowSelected, "#mailings-table")
    def _selected(self, event):
        event.stop()
        self.action_open()
