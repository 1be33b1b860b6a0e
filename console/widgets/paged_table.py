"""A DataTable that holds one page of rows fetched from the database, never the whole table.

The rows come from a `PageSource` (count() and rows(offset, limit), both run in a worker thread).
pgdn/pgup move by the rows on screen, like any table, and past the end (or start) of a page load the
next (or previous) one, as moving the cursor past its last (or first) row does; ctrl+pgdn/ctrl+pgup
change page, and g/G, home/end, ctrl+home/ctrl+end jump to the first/last row of them all.
"""
import abc
import math
from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message

from console.widgets.keyed_table import KeyedTable
from console.workers import db_work, deliver


class PageSource(abc.ABC):
    """What a PagedTable shows. Both methods run off the UI thread."""

    @abc.abstractmethod
    def count(self):
        """How many rows there are in all."""

    @abc.abstractmethod
    def rows(self, offset, limit):
        """-> [(key, cells, record)]: cells are Text renderables, record is any plain value."""


@dataclass
class _Request:
    page: int
    cursor: object  # "keep", "top", "bottom" or a row key to put the cursor on
    recount: bool


class PagedTable(KeyedTable):
    HELP_TITLE = "Paged tables (clients, messages)"
    DEFAULT_CSS = """
    PagedTable {
        height: 1fr;
    }
    """

    BINDINGS = [
        Binding("pagedown", "page_down", "Page down", id="table.page_down"),
        Binding("pageup", "page_up", "Page up", id="table.page_up"),
        Binding("ctrl+pagedown", "next_page", "Next page", show=False, id="table.next_page"),
        Binding("ctrl+pageup", "prev_page", "Previous page", show=False, id="table.prev_page"),
        Binding("ctrl+home", "first_page", "First page", show=False, id="table.first_page"),
        Binding("ctrl+end", "last_page", "Last page", show=False, id="table.last_page"),
    ]

    class Loaded(Message):
        """A page is on screen (pages and total are None until counted)."""

        def __init__(self, table, page, pages, total):
            super().__init__()
            self.table, self.page, self.pages, self.total = table, page, pages, total

        @property
        def control(self):
            return self.table

    def __init__(self, columns, source=None, page_size=100, **kwargs):
        kwargs.setdefault("cursor_type", "row")
        kwargs.setdefault("zebra_stripes", True)
        super().__init__(**kwargs)
        self._column_spec = columns  # [(label, key)] or [(label, key, width)]
        self.source = source
        self.page_size = page_size
        self.page = 0
        self.total = None
        self.records = {}
        self._target = 0  # the page asked for last (a page may still be loading)

    def on_mount(self):
        for spec in self._column_spec:
            label, key, *width = spec
            self.add_column(label, key=key, width=width[0] if width else None)

    @property
    def pages(self):
        return max(1, math.ceil((self.total or 0) / self.page_size))

    def has_next(self, page):
        if self.total is None:  # still counting: a full page may have a next one
            return self.row_count >= self.page_size
        return page < self.pages - 1

    # -- loading ----------------------------------------------------------------------------------

    def set_source(self, source):
        """Show another query (e.g. a new filter) from its first page."""
        self.source = source
        self.total = None
        self.reload(page=0, cursor="top")

    def reload(self, page=None, cursor="keep", recount=True):
        if self.source is None:
            return
        page = self._target if page is None else page
        self._target = page
        self._load(self.source, _Request(page, cursor, recount))

    @db_work(group="paged-table")
    def _load(self, source, request):
        size = self.page_size
        known = None if request.recount else self.total
        page = max(request.page, 0)
        if known is not None:
            page = min(page, max(1, math.ceil(known / size)) - 1)
            rows = source.rows(page * size, size)
            deliver(self.app, self._show, source, page, known, rows, request.cursor)
            return
        # Unknown total: show the rows first (the first paint does not wait for a count), then count.
        rows = source.rows(page * size, size)
        if rows or page == 0:
            deliver(self.app, self._show, source, page, None, rows, request.cursor)
            deliver(self.app, self._set_total, source, source.count())
            return
        total = source.count()  # past the end (rows were deleted): the last page
        page = max(1, math.ceil(total / size)) - 1
        rows = source.rows(page * size, size)
        deliver(self.app, self._show, source, page, total, rows, "bottom")

    def _show(self, source, page, total, rows, cursor):
        if source is not self.source or not self.is_attached:
            return
        old_row = self.cursor_row
        self.page, self._target = page, page
        if total is not None:
            self.total = total
        self.clear()
        self.records = {}
        for key, cells, record in rows:
            self.add_row(*cells, key=str(key))
            self.records[str(key)] = record
        if self.row_count:
            if cursor == "top":
                row = 0
            elif cursor == "bottom":
                row = self.row_count - 1
            elif cursor == "keep":
                row = min(old_row, self.row_count - 1)
            else:
                try:
                    row = self.get_row_index(str(cursor))
                except Exception:
                    row = 0
            self.move_cursor(row=row, animate=False)
        self._post_loaded()

    def _set_total(self, source, total):
        if source is not self.source or not self.is_attached:
            return
        self.total = total
        self._post_loaded()

    def _post_loaded(self):
        self.post_message(self.Loaded(self, self.page, None if self.total is None else self.pages, self.total))

    # -- the record under the cursor ----------------------------------------------------------------

    def current_key(self):
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None

    def current_record(self):
        key = self.current_key()
        return None if key is None else self.records.get(key)

    # -- keys -------------------------------------------------------------------------------------

    def action_next_page(self):
        if self.has_next(self._target):
            self.reload(self._target + 1, cursor="top", recount=False)
        elif self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def action_prev_page(self):
        if self._target > 0:
            self.reload(self._target - 1, cursor="top", recount=False)
        elif self.row_count:
            self.move_cursor(row=0)

    def action_first_page(self):
        self.reload(0, cursor="top", recount=False)

    def action_last_page(self):
        if self.total is not None:
            self.reload(self.pages - 1, cursor="bottom", recount=False)

    def action_first_row(self):
        self.action_first_page()

    def action_last_row(self):
        if self.total is None:  # not counted yet: the last row loaded
            super().action_last_row()
        else:
            self.action_last_page()

    def action_page_down(self):
        if self.row_count and self.cursor_row >= self.row_count - 1 and self.has_next(self._target):
            self.reload(self._target + 1, cursor="top", recount=False)
        else:
            super().action_page_down()

    def action_page_up(self):
        if self.row_count and self.cursor_row <= 0 and self._target > 0:
            self.reload(self._target - 1, cursor="bottom", recount=False)
        else:
            super().action_page_up()

    def action_cursor_down(self):
        if self.row_count and self.cursor_row >= self.row_count - 1 and self.has_next(self._target):
            self.reload(self._target + 1, cursor="top", recount=False)
        else:
            super().action_cursor_down()

    def action_cursor_up(self):
        if self.row_count and self.cursor_row <= 0 and self._target > 0:
            self.reload(self._target - 1, cursor="bottom", recount=False)
        else:
            super().action_cursor_up()
