"""The keys every table of the console shares: j/k down and up, g/G and home/end to the first and
last row (DataTable's own home/end scroll sideways, which a row table never needs)."""
from textual.binding import Binding
from textual.widgets import DataTable


class KeyedTable(DataTable):
    HELP_TITLE = "Tables (every list)"
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g,home", "first_row", "First row", show=False, id="table.first_row"),
        Binding("G,end", "last_row", "Last row", show=False, id="table.last_row"),
    ]

    def action_first_row(self):
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self):
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)
