"""Mailings as rows of a table: the dashboard's live ones and the mailings screen's every one.

Both show the same columns from `stats.MailingRow`; a screen picks which and how wide the text is.
A refresh with the same mailings in the same order updates cells in place, so the cursor and the
scroll position stay where the operator left them.
"""
from rich.text import Text
from textual.widgets import DataTable

from console.format import lit, local_time, one_line, progress_text, state_text
from domain.vocabulary import FAILED, SENT

LABELS = {"id": "ID", "state": "State", "progress": "Progress (sent/total)", "failed": "Failed",
          "start": "Start", "end": "End", "filter": "Filter", "text": "Text"}
ALL_COLUMNS = tuple(LABELS)


def audience_filter(row):
    """'op 900 tag vip 09:00-21:00 local', or 'everyone'."""
    parts = (f"op {row.operator}" if row.operator else "", f"tag {row.tag}" if row.tag else "",
             f"{row.window} local" if row.window else "")
    return " ".join(p for p in parts if p) or "everyone"


def row_cells(row, text_width=28):
    """Every column's cell for one MailingRow; user text stays literal."""
    failed = row.count(FAILED)
    return {
        "id": lit(row.id), "state": state_text(row.state),
        "progress": progress_text(row.count(SENT), row.done, row.total, width=12),
        "failed": Text(str(failed), style="red" if failed else ""),
        "start": lit(local_time(row.start_at)), "end": lit(local_time(row.end_at)),
        "filter": one_line(audience_filter(row), 24), "text": one_line(row.text, text_width),
    }


class MailingTable(DataTable):
    DEFAULT_CSS = """
    MailingTable {
        height: 1fr;
    }
    """

    def __init__(self, columns=ALL_COLUMNS, text_width=28, placeholder=None, **kwargs):
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self.column_keys = tuple(columns)
        self.text_width = text_width
        self.placeholder = placeholder  # shown as a row while there is no mailing
        self.rows_by_key = {}  # row key -> MailingRow
        self._order = None

    def on_mount(self):
        for key in self.column_keys:
            self.add_column(LABELS[key], key=key)

    def show(self, rows, cursor=None):
        """Show these MailingRows (in this order); `cursor`: a mailing id to put the cursor on."""
        order = [str(r.id) for r in rows]
        self.rows_by_key = {str(r.id): r for r in rows}
        if order == self._order and order and cursor is None:
            for r in rows:
                cells = row_cells(r, self.text_width)
                for column in self.column_keys:
                    self.update_cell(str(r.id), column, cells[column], update_width=True)
            return
        key = str(cursor) if cursor is not None else self.current_key()
        self.clear()
        for r in rows:
            cells = row_cells(r, self.text_width)
            self.add_row(*(cells[c] for c in self.column_keys), key=str(r.id))
        self._order = order
        if not rows and self.placeholder:
            self.add_row(Text("-"), Text(self.placeholder, style="dim"), key="none")
        if key in self.rows_by_key:
            self.move_cursor(row=self.get_row_index(key), animate=False)

    def current_key(self):
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - the cursor is past the rows: nothing is highlighted
            return None

    def current_row(self):
        """The MailingRow under the cursor (None on the placeholder or an empty table)."""
        return self.rows_by_key.get(self.current_key())
