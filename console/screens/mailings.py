"""Mailings with their state and progress, refreshed every second while anything is live."""
from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from domain import stats, validation
import service
from console.format import lit, local_time, one_line, parse_iso_z, progress_text, state_text
from console.screens.confirm import ConfirmScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.workers import db_work, deliver, notify_literal

LIVE = ("scheduled", "running", "paused")
COLUMNS = [("ID", "id"), ("State", "state"), ("Progress (sent/total)", "progress"),
           ("Failed", "failed"), ("Start", "start"), ("End", "end"), ("Filter", "filter"), ("Text", "text")]


def row_cells(s):
    done = s["sent"] + s["failed"] + s["expired"] + s["cancelled"] + s["unknown"]
    flt = " ".join(p for p in (f"op {s['operator']}" if s["operator"] else "",
                               f"tag {s['tag']}" if s["tag"] else "",
                               f"{s['window']} local" if s["window"] else "") if p) or "everyone"
    return {
        "id": lit(s["id"]), "state": state_text(s["state"]),
        "progress": progress_text(s["sent"], done, s["total"], width=12),
        "failed": Text(str(s["failed"]), style="red" if s["failed"] else ""),
        "start": lit(local_time(parse_iso_z(s["start"]))),
        "end": lit(local_time(parse_iso_z(s["end"]))), "filter": one_line(flt, 24),
        "text": one_line(s["text"], 28),
    }


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
        yield DataTable(id="mailings-table", cursor_type="row", zebra_stripes=True)
        yield Static("loading…", id="mailings-status", classes="status")
        yield Footer(compact=True)

    def on_mount(self):
        self.table = self.query_one(DataTable)
        for label, key in COLUMNS:
            self.table.add_column(label, key=key)
        self.stats = {}
        self._order = []
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
        rows = stats.mailing_stats()
        deliver(self.app, self._show, list(reversed(rows)))

    def _show(self, stats):
        table = self.table
        order = [str(s["id"]) for s in stats]
        self.stats = {str(s["id"]): s for s in stats}
        self._live = any(s["state"] in LIVE for s in stats)
        if order == self._order:
            for s in stats:
                for column, cell in row_cells(s).items():
                    table.update_cell(str(s["id"]), column, cell, update_width=True)
        else:
            key = self._pending_cursor or self.current_key()
            self._pending_cursor = None
            table.clear()
            for s in stats:
                cells = row_cells(s)
                table.add_row(*(cells[c] for _, c in COLUMNS), key=str(s["id"]))
            self._order = order
            if key in self.stats:
                table.move_cursor(row=table.get_row_index(key))
        self._status()

    def _status(self):
        stats = list(self.stats.values())
        counts = {}
        for s in stats:
            counts[s["state"]] = counts.get(s["state"], 0) + 1
        summary = ", ".join(f"{n} {state}" for state, n in counts.items()) or "no mailings yet: n creates one"
        text = Text(f"{len(stats)} mailing(s): {summary}")
        current = self.stats.get(self.current_key())
        if current and current["reason"]:  # e.g. why it paused itself
            text.append(f" · mailing {current['id']} {current['state']}: ", style="bold")
            text.append(current["reason"])
        self.query_one("#mailings-status", Static).update(text)

    def on_data_table_row_highlighted(self, event):
        if self.stats:
            self._status()

    def current_key(self):
        if not self.table.row_count:
            return None
        return self.table.coordinate_to_cell_key(self.table.cursor_coordinate).row_key.value

    def current(self):
        key = self.current_key()
        if key is None:
            notify_literal(self.app, "no mailing selected", severity="warning")
        return self.stats.get(key) if key else None

    # -- actions ----------------------------------------------------------------------------------

    def action_new(self):
        self.app.push_screen(MailingEditor(), self._saved)

    def action_edit(self):
        s = self.current()
        if s is None:
            return
        if s["state"] not in LIVE:
            notify_literal(self.app, f"mailing {s['id']} is {s['state']}; it cannot change",
                           severity="warning")
            return
        self.app.push_screen(MailingEditor(s), self._saved)

    def _saved(self, mailing):
        if mailing:
            notify_literal(self.app, f"mailing {mailing['id']} saved ({mailing['state']})")
            self._order = []  # rebuild, then put the cursor on it
            self._pending_cursor = str(mailing["id"])
            self.reload()

    def action_pause(self):
        self._act("pause")

    def action_resume(self):
        self._act("resume")

    def action_cancel(self):
        s = self.current()
        if s is None:
            return

        def answered(yes):
            if yes:
                self._set_state(s["id"], "cancel")

        self.app.push_screen(ConfirmScreen(f"Cancel mailing {s['id']}? Its unsent messages will never "
                                           f"be sent.", yes_label="Cancel it"), answered)

    def _act(self, action):
        s = self.current()
        if s is not None:
            self._set_state(s["id"], action)

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
        s = self.current()
        if s is not None:
            self.app.push_screen(MailingDetailScreen(s["id"]))

    def on_data_table_row_selected(self, event):
        event.stop()
        self.action_open()
