"""The keys every table of the console shares: j/k down and up, g/G and home/end to the first and
last row (DataTable's own home/end scroll sideways, which a row table never needs), y copies the row."""
from textual.binding import Binding
from textual.widgets import DataTable

from console.workers import notify_literal
from domain import export


class KeyedTable(DataTable):
    HELP_TITLE = "Tables (every list)"
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g,home", "first_row", "First row", show=False, id="table.first_row"),
        Binding("G,end", "last_row", "Last row", show=False, id="table.last_row"),
        Binding("y", "copy_row", "Copy row", show=False, id="table.copy",
                tooltip="Copy the selected row to the clipboard as tab-separated text"),
    ]

    def action_first_row(self):
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self):
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def copy_values(self):
        """The row under the cursor: its record's values as exported (whole, not cut to the column)
        when the table's source exports, else its cells as shown; None when there is no row."""
        if not self.row_count:
            return None
        source = getattr(self, "source", None)
        current = getattr(self, "current_record", None)
        record = current() if current is not None else None
        if record is not None and hasattr(source, "export_values"):
            return source.export_values(record)
        return [getattr(cell, "plain", cell) for cell in self.get_row_at(self.cursor_row)]

    def action_copy_row(self):
        values = self.copy_values()
        if values is None:
            notify_literal(self.app, "no row to copy", severity="warning")
            return
        line = export.tsv_line(values)
        self.app.copy_to_clipboard(line)  # OSC 52: the terminal puts it on the system clipboard
        notify_literal(self.app, line if len(line) <= 100 else line[:99] + "…", title="Copied (tab-separated)")
