"""A DataTable that holds one page of rows fetched from the database, never the whole table.

The rows come from a `PageSource` (count() and rows(offset, limit), both run in a worker thread).
pgdn/pgup move by the rows on screen, like any table, and past the end (or start) of a page load the
next (or previous) one, as moving the cursor past its last (or first) row does; ctrl+pgdn/ctrl+pgup
change page, and g/G, home/end, ctrl+home/ctrl+end jump to the first/last row of them all.

A source with `sorts` (a stats.Sorts) can be ordered by a column: o moves the order to the next column
it allows, O reverses it, and a click on a column's header orders by it (again: reversed). The database
orders every page (ORDER BY, LIMIT, OFFSET); the header marks the column with ▲ or ▼.
"""
import abc
import copy
import math
from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from console.widgets.keyed_table import KeyedTable
from console.workers import db_work, deliver, notify_literal


class PageSource(abc.ABC):
    """What a PagedTable shows. Both methods run off the UI thread."""

    @abc.abstractmethod
    def count(self):
        """How many rows there are in all."""

    @abc.abstractmethod
    def rows(self, offset, limit):
        """-> [(key, cells, record)]: cells are Text renderables, record is any plain value."""

    sorts = None  # a stats.Sorts: the columns this source can be ordered by (None: none)
    sort = None  # (column key, descending) asked for; None: the source's own order (sorts.default)

    def sorted_by(self, sort):
        """The same query in another order (a new source: pages of the old one are dropped)."""
        source = copy.copy(self)
        source.sort = sort
        return source

    @property
    def order(self):
        """(column key, descending) the rows are in, or None when it is no column's."""
        return self.sort or (self.sorts.default if self.sorts is not None else None)


REFRESH_CURSORS = ("keep", "same")  # a reload that only reads the rows again, moving nothing


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
        # Not in the footer (its room goes to each screen's own keys): the ▲/▼ in a header shows the
        # order, a click on a header changes it, and the help lists these.
        Binding("o", "sort_next", "Order by next column", show=False, id="table.sort"),
        Binding("O", "sort_reverse", "Reverse order", show=False, id="table.sort_reverse"),
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
        self._moving = None  # the _Request of a move (g/G, a page, a row) still loading, if any

    def on_mount(self):
        for spec in self._column_spec:
            label, key, *width = spec
            self.add_column(label, key=key, width=width[0] if width else None)
        self._mark_order()

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
        self._mark_order()
        self.reload(page=0, cursor="top")

    def reload(self, page=None, cursor="keep", recount=True):
        if self.source is None:
            return
        refresh = page is None and cursor in REFRESH_CURSORS
        if refresh and self._moving is not None:
            # A periodic refresh while the operator's move is loading: the refresh's worker cancels
            # the move's (one loader per table), so it carries the move's cursor (G kept its row).
            cursor, recount = self._moving.cursor, recount or self._moving.recount
            refresh = False
        page = self._target if page is None else page
        self._target = page
        request = _Request(page, cursor, recount)
        self._moving = None if refresh else request
        self._load(self.source, request)

    @db_work(group="paged-table")
    def _load(self, source, request):
        size = self.page_size
        known = None if request.recount else self.total
        page = max(request.page, 0)
        if known is None and not self._sort_affordable(source):  # by a column no index gives: counted first
            known = source.count()
            if not self._sort_affordable(source, known):
                return
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
        self.page, self._target, self._moving = page, page, None
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

    def measure_columns(self):
        """Each auto-width column as wide as its label and its widest cell shown, now. DataTable
        measures new cells when it is next idle; in a real terminal that measure was sometimes lost to
        a refresh of the page (columns drawn at their labels' width: 'Spr…' for a text) and stayed
        so. A page is at most a hundred rows: measuring them here costs little and cannot be lost."""
        changed = False
        for key, column in self.columns.items():
            if not column.auto_width:
                continue
            widest = column.label.cell_len
            for row_key in self.rows:
                value = self.get_cell(row_key, key)
                widest = max(widest, value.cell_len if isinstance(value, Text) else cell_len(str(value)))
            if widest != column.content_width:
                column.content_width, changed = widest, True
        if changed:  # an unchanged table is not drawn again
            self._require_update_dimensions = True
            self.refresh()

    def _post_loaded(self):
        self.measure_columns()
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

    # -- ordering by a column ---------------------------------------------------------------------------

    def check_action(self, action, parameters):
        if action in ("sort_next", "sort_reverse"):
            return self.source is not None and self.source.sorts is not None
        return super().check_action(action, parameters)

    def sortable(self, key):
        """Whether the rows can be ordered by column `key` now (some only while few: stats.Sorts)."""
        sorts = self.source.sorts if self.source is not None else None
        return sorts is not None and sorts.allowed(key, self.total)

    def sort_by(self, key, descending=False):
        """Order the rows by column `key` (re-queried from the first page); False when not allowed."""
        if not self.sortable(key):
            return False
        self.set_source(self.source.sorted_by((key, descending)))
        return True

    def action_sort_next(self):
        """The next column (in the columns' order) the rows can be ordered by, ascending."""
        keys = [spec[1] for spec in self._column_spec if self.sortable(spec[1])]
        if not keys:
            return
        order = self.source.order
        now = keys.index(order[0]) if order and order[0] in keys else -1
        self.sort_by(keys[(now + 1) % len(keys)])

    def action_sort_reverse(self):
        order = self.source.order
        if order is not None and self.sortable(order[0]):
            self.sort_by(order[0], not order[1])

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event):
        if event.data_table is not self or self.source is None or self.source.sorts is None:
            return
        event.stop()
        key = event.column_key.value
        order = self.source.order
        descending = not order[1] if order and order[0] == key else False
        if not self.sort_by(key, descending):
            notify_literal(self.app, self.why_not_sortable(key), title="Order", severity="warning")

    def why_not_sortable(self, key, total=None):
        sorts = self.source.sorts
        total = self.total if total is None else total
        labels = {spec[1]: str(spec[0]) for spec in self._column_spec}
        label = labels.get(key, key)
        anywhere = ", ".join(labels[k] for k in labels if k in sorts.indexed) or "none"
        if key not in sorts.columns:
            why = f"{label} cannot order these rows"
        elif total is None:
            why = f"{label} has no index: the rows are still being counted"
        else:
            why = (f"{label} has no index: it orders up to {sorts.small:,} rows (each page sorts them "
                   f"all), and these are {total:,}; a filter narrows them")
        return f"{why}. Columns that order any number of rows (indexed): {anywhere}."

    def _sort_affordable(self, source, total=None):
        """From a worker: False when `source` is ordered by a column that cannot order `total` rows
        (None: not counted, so only an indexed one can); once counted, such an order is dropped for
        the source's own, saying why (e.g. a filter that narrowed the rows was cleared)."""
        if source.sort is None or source.sorts.allowed(source.sort[0], total):
            return True
        if total is not None:
            deliver(self.app, self._drop_sort, source, total)
        return False

    def _drop_sort(self, source, total):
        if source is self.source:
            notify_literal(self.app, self.why_not_sortable(source.sort[0], total) + " Back to the default order.",
                           title="Order", severity="warning")
            self.set_source(source.sorted_by(None))

    def column_label(self, key, label):
        """The label a column shows now (a table may shorten it to fit)."""
        return label

    def _mark_order(self):
        """▲ or ▼ after the label of the column the rows are ordered by."""
        if not self.columns:
            return
        order = self.source.order if self.source is not None else None
        for spec in self._column_spec:
            label, key = spec[0], spec[1]
            column = self.columns.get(key)
            if column is None:
                continue
            text = Text(str(self.column_label(key, label)))
            if order is not None and order[0] == key:
                text.append("▼" if order[1] else "▲")  # no space: a column no wider than it must be
            if text.plain != column.label.plain:
                column.label = text
                if column.auto_width:
                    column.content_width = max(column.content_width, text.cell_len)
        self._clear_caches()
        self._require_update_dimensions = True
        self.refresh()
