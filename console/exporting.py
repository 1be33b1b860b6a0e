"""`x` on a screen with a table: the whole view, filter applied (not only the page on screen), written
as CSV to a new file in the export folder (MAILER_EXPORT_DIR, else beside the database), whose full
path a notification then gives.

A screen says what its view is with `view_export()`: an object with `export_name` (the file's stem),
`export_header()`, `export_pages()` (lists of records from a read model, page by page: see
domain.stats' `*_pages`) and `export_values(record)` (the row's values, which `y` also copies), or
`export_cells(record)` (its CSV cells already: domain.export.MessageExport, a mailing's messages as
`mailer mailings export` writes them). The
export runs in a thread worker of the app, so it goes on when the operator leaves the screen; memory
holds one page at a time, whatever the size of the view.
"""
import functools

from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from console.workers import deliver, notify_literal, report_error
from domain import export


class ExportsView(Screen):
    HELP_TITLE = "Screens with a table (clients, mailings, a mailing, live log)"
    BINDINGS = [
        # Not in the footer, which is full at 80 columns: `?` lists it, with `y` (copy the row).
        Binding("x", "export_view", "Export CSV", show=False, id="view.export",
                tooltip="Write the whole view, filter applied, to a CSV file (its path is notified)"),
    ]

    def view_export(self):
        """What this screen shows now, for export (see the module's docstring); None: nothing yet.
        Each screen with a table says; one that does not has nothing to export."""
        return None

    def action_export_view(self):
        view = self.view_export()
        if view is None:
            notify_literal(self.app, "nothing to export yet", severity="warning")
            return
        notify_literal(self.app, f"exporting {view.export_name}…")
        self.app.run_worker(functools.partial(run_export, self.app, view), name=f"export {view.export_name}",
                            group="export", thread=True, exclusive=False, exit_on_error=False)


def run_export(app, view):
    """In a worker thread: write the view's file and say where it is (or why it is not)."""
    worker = get_current_worker()
    try:
        path = export.new_file(export.export_dir(), view.export_name)
        rows = export.write_csv(path, view.export_header(), view.export_pages(),
                                getattr(view, "export_values", None), cells=getattr(view, "export_cells", None),
                                stop=lambda: worker.is_cancelled)
    except Exception as exc:  # noqa: BLE001 - a full disk or a lost database is said, not fatal
        report_error(app, exc, title="Export failed")
        return
    if rows is not None:
        deliver(app, notify_literal, app, f"{rows:,} row(s) exported to {path}", title="Export CSV",
                timeout=20)
