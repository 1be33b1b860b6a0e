"""One mailing: its counts by status, its messages page by page (a pending one with its next attempt,
in the operator's zone), and each message's attempts; pause, resume, cancel, edit and resend from here,
asking what the mailings screen asks.

`/` filters the messages: phone digits (a substring), a status, and `#N` for one message (the client
screen and the live log open a message's mailing so, with its attempts shown); `s` cycles the status
in that filter. The first escape clears the filter, the next goes back."""
import re

from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Header, Label, Static

from domain import export, mailings, stats, times, validation, vocabulary
import service
from console.exporting import ExportsView
from console.read_only import writes
from console.screens.confirm import ConfirmScreen
from console.screens.mailing_actions import CloneDeleteActions, TestSendAction, cancel_question, editable
from console.screens.mailing_editor import MailingEditor
from console.format import lit, local_time, one_line, outcome_text, page_label, state_text
from console.widgets import FilterBar, KeyedTable, KeyFooter, PagedTable, PageSource
from console.workers import db_work, deliver, notify_literal

# "#" is a message id here as in the live log's filter (#17); an attempt's own id is labelled so.
MESSAGE_COLUMNS = [("#", "id"), ("Phone", "phone"), ("Status", "status"), ("Attempts", "attempts"),
                   ("Sent at", "sent_at"), ("Next attempt", "next_attempt"), ("Last error", "last_error")]
ATTEMPT_COLUMNS = ("Attempt id", "At", "Outcome", "HTTP", "Latency", "Error")
TIME = "%Y-%m-%d %H:%M:%S"
ATTEMPTS_SHOWN = 500
STATUS_FILTERS = (None,) + vocabulary.MESSAGE_STATUSES


STATUS_WORDS = {**{s: s for s in vocabulary.MESSAGE_STATUSES},
                **{vocabulary.status_label(s): s for s in vocabulary.MESSAGE_STATUSES}, "doubt": vocabulary.UNKNOWN}


def parse_message_filter(text):
    """'7900 failed', '#17', 'in doubt' -> {'phone': '7900', 'status': 'failed', 'message': None}.
    Raises ValueError on anything else."""
    found = {"phone": "", "status": None, "message": None}
    for word in re.sub(r"\bin\s+doubt\b", "doubt", text.strip().lower()).split():
        if re.fullmatch(r"#\d{1,18}", word):
            found["message"] = int(word[1:])
        elif re.fullmatch(r"\+?\d{1,11}", word) and not found["phone"]:
            found["phone"] = word.lstrip("+")
        elif word in STATUS_WORDS and found["status"] is None:
            found["status"] = STATUS_WORDS[word]
        else:
            raise ValueError(f"cannot read {word!r}: filter by phone digits, one status "
                             f"({', '.join(vocabulary.MESSAGE_STATUSES)}) or #message id")
    return found


def with_status(text, status):
    """The filter `text` with its status word (if any) replaced by `status` (None: removed)."""
    words = [w for w in re.sub(r"\bin\s+doubt\b", "doubt", text.strip(), flags=re.I).split()
             if w.lower() not in STATUS_WORDS]
    return " ".join(words + ([status] if status else []))


class MessageSource(PageSource):
    sorts = stats.MESSAGE_SORTS

    def __init__(self, mailing_id, status=None, phone="", message=None, sort=None):
        self.mailing_id, self.status, self.phone, self.message = mailing_id, status, phone, message
        self.sort = sort

    @property
    def filter(self):
        return {"phone": self.phone, "status": self.status, "message": self.message}

    def count(self):
        return stats.message_count(self.mailing_id, self.status, self.phone, self.message)

    def rows(self, offset, limit):
        return [(m.id, (lit(m.id), lit(m.phone), outcome_text(m.status), lit(m.attempts),
                        lit(local_time(m.sent_at, fmt=TIME)),
                        lit(local_time(m.next_attempt_at, fmt=TIME) if m.status == vocabulary.PENDING else ""),
                        one_line(m.last_error, 80)), m)
                for m in stats.message_page(self.mailing_id, self.status, limit, offset, self.phone,
                                            self.message, self.sort)]

    # `y` (copy a row): console.widgets.keyed_table; `x` (export) writes domain.export.MessageExport
    def export_values(self, m):
        return (m.id, m.phone, vocabulary.status_label(m.status), m.attempts, m.sent_at,
                m.next_attempt_at if m.status == vocabulary.PENDING else None, m.last_error)


class MailingDetailScreen(CloneDeleteActions, TestSendAction, ExportsView):
    SUB_TITLE = "Mailing"
    HELP_TITLE = "Mailing detail"
    AUTO_FOCUS = "#messages"
    BINDINGS = [
        # escape clears the filter first (and leaves its input), then goes back
        Binding("escape", "clear_filter", "Clear filter", show=False, id="detail.clear_filter"),
        Binding("escape,q", "app.pop_screen", "Back", id="detail.back"),  # q: back, not quit
        Binding("slash", "filter", "Filter", id="detail.filter"),
        Binding("s", "cycle_status", "Status filter", id="detail.status"),
        Binding("e", "edit", "Edit", id="detail.edit"),
        Binding("p", "pause", "Pause", id="detail.pause"),
        Binding("r", "resume", "Resume", id="detail.resume"),
        Binding("c", "cancel", "Cancel", id="detail.cancel"),
        Binding("t", "test_send", "Test send", id="detail.test_send"),
        Binding("R", "resend_in_doubt", "Resend in doubt", id="detail.resend"),
        Binding("C", "clone", "Clone", id="detail.clone"),
        Binding("d", "delete", "Delete", id="detail.delete"),
    ]

    def __init__(self, mailing_id, message_id=None):
        """`message_id`: open on that message (filtered to it, its attempts shown)."""
        super().__init__()
        self.mailing_id = mailing_id
        self.filter_text = f"#{message_id}" if message_id is not None else ""
        self.status_filter = None
        self.message_id = message_id
        self.live = True
        self.row = None  # the stats.MailingRow shown in the summary

    def compose(self):
        yield Header()
        yield Static("loading…", id="detail-summary")
        with Horizontal(classes="bar"):
            yield Label("Messages", classes="section-title")
            yield Static("", id="messages-status", classes="status")
        yield FilterBar("filter: phone digits, a status (failed, pending, …), #message id",
                        input_id="message-filter", live=True, id="messages-filter")
        yield PagedTable(MESSAGE_COLUMNS, source=MessageSource(self.mailing_id,
                                                               **parse_message_filter(self.filter_text)),
                         id="messages")
        yield Label("Attempts (select a message)", id="attempts-title", classes="section-title")
        yield KeyedTable(id="attempts", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self):
        self.sub_title = f"Mailing {self.mailing_id}"
        attempts = self.query_one("#attempts", DataTable)
        for label in ATTEMPT_COLUMNS:
            attempts.add_column(label)
        self.messages = self.query_one("#messages", PagedTable)
        self.messages.reload(page=0, cursor="top")
        if self.filter_text:
            self.query_one(FilterBar).input.value = self.filter_text
        if self.message_id is not None:
            self._select_message(self.message_id)
        self._load_summary()
        self.set_interval(1.0, self._tick)
        self._ticks = 0

    def _tick(self):
        self._ticks += 1
        if self.is_current and self.live:
            self._load_summary()
            if self._ticks % 2 == 0:
                self.messages.reload(recount=True)

    def view_export(self):
        """The messages the filter leaves, as `mailer mailings export` writes them (the same code)."""
        source = self.messages.source
        return export.MessageExport(self.mailing_id, source.status, source.phone, source.message)

    # -- summary ----------------------------------------------------------------------------------

    _plan = (None, None)  # (what a scheduled spread mailing's plan was read for, when it ends)

    @db_work(group="detail-summary")
    def _load_summary(self):
        row = stats.mailing_row(self.mailing_id)
        deliver(self.app, self._show_summary, row, self._spread_until(row))

    def _spread_until(self, row):
        """When a live spread mailing sends its last message (None: not spread, over, or nothing
        left). A scheduled one's plan reads its audience's zones: once per version of the mailing."""
        if not row.spread or row.state not in vocabulary.LIVE_STATES:
            return None
        if row.started:
            return stats.spread_until(row)
        key = (row.start_at, row.end_at, row.window, row.days, row.filter)
        if self._plan[0] != key:
            self._plan = (key, stats.spread_until(row))
        return self._plan[1]

    def _show_summary(self, m, spread_until=None):
        self.row = m
        self.live = m.state in vocabulary.LIVE_STATES
        text = Text()
        text.append(f"Mailing {m.id}  ", style="bold")
        text.append_text(state_text(m.state))
        if m.reason:
            text.append(f" ({m.reason})")
        text.append("  started" if m.started else "  not started yet", style="dim")
        if m.archived:
            text.append("  archived", style="bold")
        if m.source is not None:
            text.append(f"\na resend to {mailings.describe_source(m.source)}")
        elif m.source_id is not None:
            text.append(f"\ncloned from mailing {m.source_id}")
        text.append("\nstart ")
        text.append(times.describe_time(m.start_at))
        text.append("   end ")
        text.append(times.describe_time(m.end_at))
        text.append("\nfilter: ")
        text.append(m.audience)
        text.append(f"  window {m.window or '-'}  days {m.days or 'every day'}")
        if m.spread:
            text.append("  spread", style="bold")
            if spread_until is not None:
                same_day = local_time(spread_until, fmt="%Y-%m-%d") == local_time(times.utcnow(), fmt="%Y-%m-%d")
                text.append(f" until {local_time(spread_until, fmt='%H:%M' if same_day else '%Y-%m-%d %H:%M')}",
                            style="bold")
        text.append("\ncounts: ")
        for status in vocabulary.MESSAGE_STATUSES:
            text.append_text(outcome_text(status))
            text.append(f" {m.count(status)}   ")
        text.append(f"total {m.total}", style="bold")
        text.append("\ntext: ")
        text.append(m.text)
        text.append(f"\ntimes in {times.operator_zone()}", style="dim")
        self.query_one("#detail-summary", Static).update(text)

    # -- pause, resume, cancel, edit ------------------------------------------------------------------

    @writes("pausing a mailing")
    def action_pause(self):
        self._set_state(self.mailing_id, "pause")

    @writes("resuming a mailing")
    def action_resume(self):
        self._set_state(self.mailing_id, "resume")

    def test_send_target(self):
        return self.mailing_id

    @writes("cancelling a mailing")
    def action_cancel(self):
        def answered(yes):
            if yes:
                self._set_state(self.mailing_id, "cancel")

        self.app.push_screen(cancel_question(self.mailing_id), answered)

    @db_work(group="detail-state", exclusive=False)
    def _set_state(self, mailing_id, action):
        try:
            mailing = service.set_mailing_state(mailing_id, action)
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, "; ".join(exc.errors.values()), severity="warning")
            return
        deliver(self.app, notify_literal, self.app, f"mailing {mailing.id} is {mailing.state}")
        deliver(self.app, self._reload_all)

    @writes("editing a mailing")
    def action_edit(self):
        if self.row is None or not editable(self.app, self.row):
            return

        def saved(mailing):
            if mailing:
                notify_literal(self.app, f"mailing {mailing.id} saved ({mailing.state})")
                self._reload_all()

        self.app.push_screen(MailingEditor(self.row), saved)

    def _reload_all(self):
        self._load_summary()
        self.messages.reload(recount=True)

    # -- clone and delete ---------------------------------------------------------------------------

    def life_target(self):
        return self.row

    def cloned(self, mailing):
        if mailing:
            notify_literal(self.app, f"mailing {mailing.id} saved ({mailing.state})")

    def deleted(self, done):
        if done.outcome == "deleted":  # nothing left to show
            self.app.pop_screen()
        else:
            self._load_summary()

    # -- resend what is in doubt --------------------------------------------------------------------

    @writes("resending the messages in doubt")
    def action_resend_in_doubt(self):
        def answered(yes):
            if yes:
                self._resend()

        self.app.push_screen(ConfirmScreen(
            f"Send mailing {self.mailing_id}'s in-doubt messages again, with the same msgId? Each may "
            f"already have reached its phone, and would then arrive twice.", yes_label="Resend"), answered)

    @db_work(group="detail-resend")
    def _resend(self):
        try:
            done = service.resend_in_doubt(self.mailing_id)
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, "; ".join(exc.errors.values()), severity="warning")
            return
        deliver(self.app, notify_literal, self.app, done.describe())
        deliver(self.app, self._load_summary)

    # -- messages ---------------------------------------------------------------------------------

    @on(PagedTable.Loaded, "#messages")
    def _messages_loaded(self, event):
        source = self.messages.source
        label = Text(f"status {source.status or 'any'}")
        if source.phone:
            label.append(f" · phone containing {source.phone}")
        if source.message is not None:
            label.append(f" · message #{source.message}")
        label.append(f" · {page_label(event, 'message')}")
        self.query_one("#messages-status", Static).update(label)

    def action_filter(self):
        self.query_one(FilterBar).focus_input()

    @on(FilterBar.Applied, "#messages-filter")
    def _filter(self, event):
        self._apply_filter(event.value)
        if event.submitted:
            self.messages.focus()

    def _apply_filter(self, text):
        try:
            wanted = parse_message_filter(text)
        except ValueError as exc:
            notify_literal(self.app, exc, severity="warning")
            return
        self.status_filter = wanted["status"]
        source = self.messages.source
        if wanted != source.filter:
            self.messages.set_source(MessageSource(self.mailing_id, **wanted, sort=source.sort))

    def action_clear_filter(self):
        if not self.query_one(FilterBar).leave(self.messages):
            raise SkipAction()  # nothing to clear: escape goes back

    def action_cycle_status(self):
        """The next status in the filter (any, pending, sent, …), the rest of the filter kept."""
        index = STATUS_FILTERS.index(self.status_filter)
        status = STATUS_FILTERS[(index + 1) % len(STATUS_FILTERS)]
        bar = self.query_one(FilterBar)
        text = with_status(bar.input.value, status)
        bar.input.value = text
        self._apply_filter(text)

    @on(DataTable.RowHighlighted, "#messages")
    def _message_highlighted(self, event):
        if event.row_key is not None:
            self._select_message(int(event.row_key.value))

    @on(DataTable.RowSelected, "#messages")
    def _message_selected(self, event):
        event.stop()
        if event.row_key is not None:
            self._select_message(int(event.row_key.value))
            self.query_one("#attempts", DataTable).focus()

    @on(DataTable.RowSelected, "#attempts")
    def _attempt_selected(self, event):
        event.stop()  # nothing to open below an attempt

    def _select_message(self, message_id):
        self.message_id = message_id
        self._load_attempts(message_id)

    @db_work(group="detail-attempts")
    def _load_attempts(self, message_id):
        rows = stats.journal_page(message=message_id, limit=ATTEMPTS_SHOWN)
        deliver(self.app, self._show_attempts, message_id, rows)

    def _show_attempts(self, message_id, rows):
        if message_id != self.message_id:
            return
        self.query_one("#attempts-title", Label).update(
            Text(f"Attempts of message {message_id}: {len(rows)}"))
        table = self.query_one("#attempts", DataTable)
        table.clear()
        for a in rows:
            table.add_row(lit(a.id), lit(local_time(a.at, fmt="%Y-%m-%d %H:%M:%S")), outcome_text(a.outcome),
                          lit(a.http_status if a.http_status is not None else "-"),
                          lit(f"{a.latency_ms:.0f} ms" if a.latency_ms is not None else "-"),
                          one_line(a.error, 100))
