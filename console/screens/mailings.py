"""Mailings with their state and progress, a page at a time (newest first).

Only the page on screen is read: its mailings and, in one GROUP BY, their counts. It is read again
every second while a mailing on it may still send, else every few seconds (to notice new mailings
and a new count), and only the cells that changed are drawn again.
"""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Header, Input, Static

from domain import validation
from domain.vocabulary import LIVE_STATES
import service
from console.exporting import ExportsView
from console.read_only import writes
from console.screens.mailing_actions import CloneDeleteActions, TestSendAction, cancel_question, editable
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.widgets import FilterBar, KeyFooter, MailingSource, MailingTable, PagedTable
from console.workers import db_work, deliver, notify_literal

RECOUNT_EVERY = 5  # seconds between reads of a page with nothing live on it (and of the count)
PAGE_SIZE = 50  # mailings per page: a screenful or so (each row has a progress bar to draw)


class MailingsScreen(CloneDeleteActions, TestSendAction, ExportsView):
    SUB_TITLE = "Mailings"
    AUTO_FOCUS = "#mailings-table"
    BINDINGS = [
        Binding("n", "new", "New", id="mailings.new"),
        Binding("e", "edit", "Edit", id="mailings.edit"),
        Binding("p", "pause", "Pause", id="mailings.pause"),
        Binding("r", "resume", "Resume", id="mailings.resume"),
        Binding("c", "cancel", "Cancel", id="mailings.cancel"),
        Binding("t", "test_send", "Test send", id="mailings.test_send"),
        Binding("C", "clone", "Clone", id="mailings.clone"),
        Binding("d", "delete", "Delete", id="mailings.delete"),
        Binding("a", "toggle_archived", "Archived", show=False, id="mailings.archived"),
        Binding("enter", "open", "Open", priority=True, id="mailings.open"),
        Binding("slash", "filter", "Filter", id="mailings.filter"),
        Binding("escape", "leave_filter", "Clear filter", show=False, id="mailings.clear_filter"),
    ]

    def compose(self):
        yield Header()
        yield FilterBar("filter by text, id, state, tag or operator", input_id="mailing-filter", live=True,
                        id="mailings-filter")
        yield MailingTable(source=MailingSource(), page_size=PAGE_SIZE, id="mailings-table")
        yield Static("loading…", id="mailings-status", classes="status")
        yield KeyFooter()

    def on_mount(self):
        self.table = self.query_one(MailingTable)
        self.table.after_show = self._status  # the status line changes with the rows, not a moment after
        self._ticks = 0
        self._reload_on_resume = False
        self.table.reload(page=0, cursor="top")
        self.set_interval(1.0, self._tick)

    @property
    def rows(self):
        """The MailingRows of the page on screen."""
        return list(self.table.records.values())

    def _live(self):
        return any(r.state in LIVE_STATES for r in self.table.records.values())

    def _tick(self):
        self._ticks += 1
        if not self.is_current:
            return
        # every second while a mailing on the page is live, else every few seconds (another process
        # may add one); the count and the states now and then
        if self._ticks % RECOUNT_EVERY == 0:
            self.reload()
        elif self._live():
            self.table.reload(cursor=self._cursor(), recount=False)

    def on_screen_suspend(self):
        # Left for another screen: clients may change meanwhile, and audiences with them. (Textual
        # also resumes a screen it has just mounted, sometimes twice: only a suspension counts.)
        # Under a dialog: the dialog's callback reloads what it changed.
        self._reload_on_resume = not self.app.screen.is_modal

    def on_screen_resume(self):
        if self._reload_on_resume:
            self.table.source.audiences.clear()
            self.reload()
        self._reload_on_resume = False

    def _cursor(self):
        """Where a refresh puts the cursor: on the same mailing (a new one may push the rows down)."""
        return "same"

    def reload(self, cursor=None, page=None):
        self.table.reload(page=page, cursor=cursor or self._cursor(), recount=True)

    def view_export(self):
        return self.table.source

    # -- filter -----------------------------------------------------------------------------------

    def check_action(self, action, parameters):
        if action == "open" and isinstance(self.focused, Input):  # enter in the filter applies it
            return False
        return super().check_action(action, parameters)

    def action_filter(self):
        self.query_one(FilterBar).focus_input()

    @on(FilterBar.Applied, "#mailings-filter")
    def _filter(self, event):
        source = self.table.source
        if event.value != source.search:
            self.table.set_source(MailingSource(event.value, source.sort, source.audiences, source.archived))
        if event.submitted:
            self.table.focus()

    def action_leave_filter(self):
        self.query_one(FilterBar).leave(self.table)

    @on(PagedTable.Loaded, "#mailings-table")
    def _loaded(self, event):
        if self.table.source.audiences.wanted:
            self._count_audiences(self.table.source)

    @db_work(group="mailings-audiences")
    def _count_audiences(self, source):
        """The audiences of scheduled mailings on the page not counted yet (or a while ago): the page
        was shown without waiting for them; it is read again once they are."""
        if source.audiences.fill():
            deliver(self.app, self._audiences_counted, source)

    def _audiences_counted(self, source):
        if source is self.table.source:
            self.table.reload(cursor=self._cursor(), recount=False)

    def _status(self):
        table = self.table
        by_state = table.source.by_state
        if table.total is None or by_state is None:
            text = Text("counting mailings…")
        elif not table.total and not table.source.search:
            text = Text("0 mailing(s): no mailings yet: n creates one")
        else:
            summary = ", ".join(f"{n:,} {state}" for state, n in sorted(by_state.items()))
            text = Text(f"{table.total:,} mailing(s)")
            if table.source.search:
                text.append(" matching ")
                text.append(repr(table.source.search))
            if summary:
                text.append(f": {summary}")
            if table.total > table.page_size:
                text.append(f" · page {table.page + 1:,} of {table.pages:,}")
        if table.source.archived:
            text.append(" · archived ones shown")
        elif table.source.archived_hidden:
            text.append(f" · {table.source.archived_hidden:,} archived hidden")
        current = table.current_row()
        if current and current.reason:  # e.g. why it paused itself
            text.append(f" · mailing {current.id} {current.state}: ", style="bold")
            text.append(current.reason)
        if text != getattr(self, "_status_text", None):  # unchanged: not drawn again
            self._status_text = text
            self.query_one("#mailings-status", Static).update(text)

    @on(DataTable.RowHighlighted, "#mailings-table")
    def _highlighted(self, event):
        self._status()

    def current(self):
        row = self.table.current_row()
        if row is None:
            notify_literal(self.app, "no mailing selected", severity="warning")
        return row

    # -- actions ----------------------------------------------------------------------------------

    @writes("creating a mailing")
    def action_new(self):
        self.app.push_screen(MailingEditor(), self._saved)

    @writes("editing a mailing")
    def action_edit(self):
        row = self.current()
        if row is None:
            return
        if not editable(self.app, row):
            return
        self.app.push_screen(MailingEditor(row), self._saved)

    def _saved(self, mailing):
        if mailing:
            notify_literal(self.app, f"mailing {mailing.id} saved ({mailing.state})")
            # an edited mailing stays on its page; a new one is the newest: first page
            key = str(mailing.id)
            self.reload(cursor=key, page=None if key in self.table.records else 0)

    @writes("pausing a mailing")
    def action_pause(self):
        self._act("pause")

    @writes("resuming a mailing")
    def action_resume(self):
        self._act("resume")

    def test_send_target(self):
        row = self.current()
        return None if row is None else row.id

    @writes("cancelling a mailing")
    def action_cancel(self):
        row = self.current()
        if row is None:
            return

        def answered(yes):
            if yes:
                self._set_state(row.id, "cancel")

        self.app.push_screen(cancel_question(row.id), answered)

    def action_toggle_archived(self):
        """Show the archived mailings too, or hide them again."""
        source = self.table.source
        self.table.set_source(MailingSource(source.search, source.sort, source.audiences, not source.archived))

    def life_target(self):
        return self.current()

    def cloned(self, mailing):
        self._saved(mailing)

    def deleted(self, done):
        self.reload()

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
        deliver(self.app, self.reload, str(mailing.id))

    def action_open(self):
        row = self.current()
        if row is not None:
            self.app.push_screen(MailingDetailScreen(row.id))

    @on(DataTable.RowSelected, "#mailings-table")
    def _selected(self, event):
        event.stop()
        self.action_open()
