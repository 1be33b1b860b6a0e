"""Import clients from a CSV file and report every rejected row with its reason."""
from pathlib import Path

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Static

from domain import clients, validation
import service
from console.format import lit
from console.screens.form import FormScreen
from console.widgets import Field, KeyedTable, KeyFooter
from console.workers import db_work, deliver

SHOWN_REJECTED = 500  # rows of the report put in the table; the summary gives the full count
WHY_WIDTH = 50  # of the dialog's 96 columns


class ImportScreen(FormScreen):
    """Dismisses with the number of clients imported (0 if none)."""

    HELP_TITLE = "Import CSV"

    BINDINGS = [
        Binding("escape", "close", "Close", id="import.close"),
        Binding("ctrl+s", "run_import", "Import", id="import.run"),
    ]

    def __init__(self):
        super().__init__()
        self.imported = 0

    def compose(self):
        with Vertical(classes="dialog import-dialog"):
            yield Label("Import clients from CSV", classes="dialog-title")
            yield Field("file", "CSV file", Input(placeholder="/path/to/clients.csv", id="path"),
                        hint="header: " + ",".join(clients.CSV_HEADER))
            yield Checkbox("All or nothing (import nothing if a row is bad)", id="all-or-nothing")
            with Horizontal(classes="buttons"):
                yield Button("Import (enter)", variant="primary", id="run")
                yield Button("Close (esc)", id="close")
            yield Static("", id="import-summary")
            yield KeyedTable(id="rejected", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self):
        table = self.query_one("#rejected", DataTable)
        table.add_column("Line", key="line")
        # A reason is shown whole, wrapped in its column (a hint like "(did you mean ...?)" ends it).
        table.add_column("Why", key="why", width=WHY_WIDTH)
        table.add_column("Row", key="row")
        table.display = False
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    def _path_submitted(self, event):
        event.stop()
        self.action_run_import()

    @on(Button.Pressed, "#run")
    def _run_pressed(self, event):
        event.stop()
        self.action_run_import()

    @on(Button.Pressed, "#close")
    def _close_pressed(self, event):
        event.stop()
        self.action_close()

    def action_close(self):
        self.dismiss(self.imported)

    def action_go_back(self):
        self.action_close()

    def action_run_import(self):
        path = self.query_one("#path", Input).value.strip()
        field = self.query_one("#field-file", Field)
        if not path:
            field.set_error("give the path of a CSV file")
            return
        field.set_error(None)
        self.query_one("#import-summary", Static).update(Text("importing…"))
        self.query_one("#run", Button).disabled = True
        self._import(Path(path).expanduser(), self.query_one("#all-or-nothing", Checkbox).value)

    @db_work(group="import")
    def _import(self, path, all_or_nothing):
        try:
            report = service.import_clients(path, all_or_nothing=all_or_nothing)
        except (OSError, UnicodeDecodeError, validation.ValidationError) as exc:
            message = (next(iter(exc.errors.values())) if isinstance(exc, validation.ValidationError)
                       else f"{exc.strerror or exc}: {path}" if isinstance(exc, OSError) else str(exc))
            deliver(self.app, self._failed, message)
            return
        deliver(self.app, self._show_report, report, all_or_nothing)

    def _failed(self, message):
        self.query_one("#run", Button).disabled = False
        self.query_one("#field-file", Field).set_error(message)
        self.query_one("#import-summary", Static).update("")

    def _show_report(self, report, all_or_nothing):
        self.query_one("#run", Button).disabled = False
        self.imported += report.imported
        summary = f"imported {report.imported} of {report.total} row(s)"
        if report.rejected:
            summary += f"; {len(report.rejected)} rejected"
            if all_or_nothing:
                summary += " (so nothing was imported)"
            if len(report.rejected) > SHOWN_REJECTED:
                summary += f"; the first {SHOWN_REJECTED} are listed"
        style = "bold red" if report.rejected else "bold green"
        self.query_one("#import-summary", Static).update(Text(summary, style=style))
        table = self.query_one("#rejected", DataTable)
        table.clear()
        for line_no, raw, why in report.rejected[:SHOWN_REJECTED]:
            table.add_row(lit(line_no), Text(why), lit(raw), height=None)
        table.display = bool(report.rejected)
