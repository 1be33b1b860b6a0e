"""Mailings as rows of a table: the dashboard's live ones and the mailings screen's every one.

Both show the same columns from `stats.MailingRow`; a screen picks which. The table fits them to its
width: the text takes the room the other columns leave (at 200 columns a long text shows whole), and
a table narrower than NARROW is compact, without the End and Failed columns (the mailing's detail has
them, and its failures are the red part of the bar) and with shorter cells, so that at 80 columns the
filter and the text are still there.
The mailings screen pages them (a `MailingSource`: one page of mailings and its counts at a time);
the dashboard gives its bounded list with `show`. A refresh with the same mailings in the same order
updates only the cells that changed, in place, so the cursor and the scroll position stay where the
operator left them and an unchanged table is not drawn again.
"""
import dataclasses
import math

from rich.cells import cell_len
from rich.text import Text

from console.format import finish_text, lit, local_time, one_line, progress_text, state_text
from console.widgets.paged_table import PagedTable, PageSource
from console.workers import db_work, deliver
from domain import stats, times
from domain.audience import Filter
from domain.vocabulary import FAILED, MESSAGE_STATUSES, SENT, status_label

LABELS = {"id": "ID", "state": "State", "progress": "Progress (sent/total)", "failed": "Failed",
          "start": "Start", "end": "End", "filter": "Filter", "text": "Text"}
ALL_COLUMNS = tuple(LABELS)  # the mailings screen's
# The dashboard's too: a running mailing's expected finish (stats.Finish, read with the dashboard)
LABELS["finish"] = "Expected finish"
COMPACT_LABELS = dict(LABELS, progress="Progress", finish="Finish")
NARROW = 120  # a table narrower than this (in columns) is compact
COMPACT_DROP = ("failed", "end")  # the columns a compact table leaves out
MIN_TEXT = 16  # the text column is never narrower than this (the table scrolls sideways instead)


def audience_filter(row):
    """'op 900 tag vip 09:00-21:00 local', 'op 900,916 not x skip 24h', or 'everyone'."""
    flt = row.filter or Filter.of(row.operator, row.tag)
    parts = (flt.describe(empty="", short=True), f"{row.window} local" if row.window else "")
    return " ".join(p for p in parts if p) or "everyone"


def _state(row):
    """Its state, and whether it is archived (shown only when archived ones are)."""
    text = state_text(row.state)
    if row.archived:
        text.append(" archived", style="dim")
    return text


def _progress(row, sent, compact):
    bar = 6 if compact else 12
    if row.total is None:  # a scheduled mailing's audience, not counted yet
        return Text("░" * bar + ("  " if compact else "   …  ") + f"{sent}/…", style="dim", no_wrap=True)
    return progress_text(sent, row.done, row.total, width=bar, percent=not compact)


def row_cells(row, text_width=28, compact=False):
    """Every column's cell for one MailingRow (shorter ones when `compact`); user text stays literal."""
    failed = row.count(FAILED)
    when = "%m-%d %H:%M" if compact else "%Y-%m-%d %H:%M"
    return {
        "id": lit(row.id), "state": _state(row), "progress": _progress(row, row.count(SENT), compact),
        "failed": Text(str(failed), style="red" if failed else ""),
        "start": lit(local_time(row.start_at, fmt=when)), "end": lit(local_time(row.end_at, fmt=when)),
        "filter": one_line(audience_filter(row), 16 if compact else 24), "text": one_line(row.text, text_width),
        "finish": finish_text(row.finish, compact),
    }


def widest_cells(row, columns, compact):
    """{column: cells} each column of `row` may need while it sends (its bar when all is sent)."""
    cells = row_cells(row, 0, compact)
    widths = {c: cell_len(cells[c].plain) for c in columns if c != "text"}
    if "progress" in widths and row.total is not None:
        widths["progress"] = cell_len(_progress(row, row.total, compact).plain)
    return widths


class MailingSource(PageSource):
    """Every mailing (or those matching `search`: stats.mailing_search), newest first or in the order
    `sort` (stats.MAILING_SORTS), a page at a time; the count also reads how many are in each state
    (one GROUP BY over the state index), for the status line. Its rows come without cells: the
    MailingTable draws them for the width it has."""
    sorts = stats.MAILING_SORTS

    def __init__(self, search="", sort=None, audiences=None, archived=False):
        self.search = search
        self.sort = sort
        self.archived = archived  # archived mailings too (else hidden)
        self.archived_hidden = 0  # how many archived ones are hidden, once counted
        self.by_state = None  # {state: mailings}, once counted
        # A scheduled mailing's total is the audience it would have now: see stats.AudienceCache.
        self.audiences = audiences if audiences is not None else stats.AudienceCache()

    def count(self):
        self.by_state = stats.mailings_by_state(self.search, self.archived)
        self.archived_hidden = 0 if self.archived else stats.archived_count()
        return sum(self.by_state.values())

    def rows(self, offset, limit):
        return [(r.id, None, r)
                for r in stats.mailing_page_rows(limit, offset, self.audiences, self.search, self.sort,
                                                 self.archived)]

    # the whole view, for `x` (export) and `y` (copy a row): console.exporting
    export_name = "mailings"

    def export_header(self):
        zone = times.operator_zone()
        return ("ID", "State", "Reason", "Text", "Operator", "Tag", "Window", f"Start ({zone})",
                f"End ({zone})", "Total", *(status_label(s) for s in MESSAGE_STATUSES), "Filter")

    def export_pages(self):
        return stats.mailing_pages(self.search, archived=self.archived)

    def export_values(self, r):
        # Operator and Tag: the filter's one operator and tag, if so; Filter: the whole filter
        return (r.id, r.state, r.reason, r.text, r.operator, r.tag, r.window, r.start_at, r.end_at,
                r.total, *(r.count(s) for s in MESSAGE_STATUSES), r.audience)


def cells_of(row, columns, text_width, compact=False):
    cells = row_cells(row, text_width, compact)
    return tuple(cells[c] for c in columns)


class MailingTable(PagedTable):
    DEFAULT_CSS = """
    MailingTable {
        height: 1fr;
    }
    """

    def __init__(self, columns=ALL_COLUMNS, placeholder=None, source=None, page_size=100, **kwargs):
        super().__init__([(LABELS[key], key) for key in columns], source=source, page_size=page_size,
                         **kwargs)
        self.wanted_columns = tuple(columns)  # as wide as it may be; column_keys: those shown now
        self.column_keys = tuple(columns)
        self.compact = False
        self.text_width = 28  # until the table knows its width
        self.placeholder = placeholder  # shown as a row while there is no mailing
        self._cells = {}  # row key -> the cells shown
        if source is None:  # the dashboard's list: its page keys scroll, as any table's, unannounced
            for key in ("pagedown", "pageup"):
                self._bindings.key_to_bindings[key] = [
                    dataclasses.replace(b, show=False) for b in self._bindings.key_to_bindings.get(key, [])]
        # Called as soon as a page is shown, before Loaded is handled: what goes with the rows (a
        # status line) is painted in the same frame as they are.
        self.after_show = None

    def action_first_row(self):
        if self.source is not None:
            super().action_first_row()
        elif self.row_count:  # the dashboard's list: one "page", no source to load from
            self.move_cursor(row=0)

    def action_last_row(self):
        if self.source is not None:
            super().action_last_row()
        elif self.row_count:
            self.move_cursor(row=self.row_count - 1)

    def check_action(self, action, parameters):
        """Without a source (the dashboard's list) there are no pages: their keys are not offered."""
        if self.source is None and action in ("next_page", "prev_page", "first_page", "last_page"):
            return False
        return super().check_action(action, parameters)

    @property
    def rows_by_key(self):
        """row key -> MailingRow of the rows shown."""
        return self.records

    # -- fitting the width --------------------------------------------------------------------------

    def on_resize(self, event):
        self.fit()

    def fit(self):
        """Lay the columns out for the table's width now (compact or not, the text's width) and draw
        the rows shown again for it."""
        width = self.size.width
        if not width:
            return
        compact = width < NARROW
        keys = tuple(c for c in self.wanted_columns if not (compact and c in COMPACT_DROP))
        if (compact, keys) != (self.compact, self.column_keys):
            self.compact, self.column_keys = compact, keys
            key = self.current_key()
            self.clear(columns=True)
            labels = COMPACT_LABELS if compact else LABELS
            for column in keys:
                self.add_column(labels[column], key=column)
            self._mark_order()  # the ▲/▼ of the order, on the columns made again
            self._cells = {}
            entries = self._entries(list(self.records.values()))
            self._rebuild(entries)
            if key in self.records:
                self.move_cursor(row=self.get_row_index(key), animate=False)
            return
        entries = self._entries(list(self.records.values()))
        if entries and not self._update_in_place(entries):
            key = self.current_key()
            self._rebuild(entries)
            if key in self.records:
                self.move_cursor(row=self.get_row_index(key), animate=False)

    def column_label(self, key, label):
        return (COMPACT_LABELS if self.compact else LABELS).get(key, label)

    def _text_width(self, records):
        """The room the other columns leave the text, as wide as they may get while these mailings
        send (a growing count does not push the text out of view)."""
        width = self.size.width
        if not width or "text" not in self.column_keys:
            return self.text_width
        labels = COMPACT_LABELS if self.compact else LABELS
        others = [c for c in self.column_keys if c != "text"]
        widths = {c: cell_len(labels[c]) for c in others}
        for row in records:
            for column, w in widest_cells(row, others, self.compact).items():
                widths[column] = max(widths[column], w)
        padding = 2 * self.cell_padding
        used = sum(w + padding for w in widths.values()) + padding + self.styles.scrollbar_size_vertical
        return max(MIN_TEXT, width - used)

    def _entries(self, records):
        """[(key, cells, record)] of these MailingRows, drawn for the width the table has."""
        self.text_width = self._text_width(records)
        return [(r.id, cells_of(r, self.column_keys, self.text_width, self.compact), r) for r in records]

    # -- rows ---------------------------------------------------------------------------------------

    def show(self, rows, cursor=None):
        """Show these MailingRows (in this order), not paged; `cursor`: a mailing id to put the
        cursor on."""
        entries = self._entries(rows)
        if cursor is None and self._update_in_place(entries):
            return
        if not entries and self._shown_empty:  # still nothing: not drawn again
            return
        key = str(cursor) if cursor is not None else self.current_key()
        self._rebuild(entries)
        if key in self.records:
            self.move_cursor(row=self.get_row_index(key), animate=False)
        self.measure_columns()

    @db_work(group="paged-table")
    def _load(self, source, request):
        """As PagedTable's, but counted before the rows are read, and shown with them: counting the
        mailings (one GROUP BY over the state index, ~10 ms at 100,000) is cheap, and the status line
        then never says another number than the rows show."""
        size = self.page_size
        total = self.total
        if request.recount or total is None:
            total = source.count()
        if not self._sort_affordable(source, total):  # ordered by a column that cannot order so many
            return
        last = max(1, math.ceil(total / size)) - 1
        page = min(max(request.page, 0), last)
        cursor = "bottom" if page < request.page else request.cursor  # past the end: the last page
        deliver(self.app, self._show, source, page, total, source.rows(page * size, size), cursor)

    def _show(self, source, page, total, rows, cursor):
        """A page from the source: cells updated in place when it holds the same mailings as shown.
        `cursor` may also be "same": on the mailing under the cursor when the page arrives (a refresh
        must not move it back if the operator moved it meanwhile)."""
        if source is not self.source or not self.is_attached:
            return
        rows = self._entries([record for _, _, record in rows])
        if cursor == "same":  # a refresh: the cursor stays on the mailing it is on now, if still shown
            key = self.current_key()
            cursor = key if key is not None and key in {str(k) for k, _, _ in rows} else "keep"
        if page == self.page and cursor not in ("top", "bottom") and self._update_in_place(rows):
            if total is not None:
                self.total = total
            self._target, self._moving = page, None
            key = None if cursor == "keep" else str(cursor)
            if key in self.records and key != self.current_key():
                self.move_cursor(row=self.get_row_index(key), animate=False)
            self._post_loaded()
            return
        self._fit_columns_anew()
        super()._show(source, page, total, rows, cursor)
        self._cells = {str(key): tuple(cells) for key, cells, _ in rows}
        self._placeholder(rows)

    def _post_loaded(self):
        if self.after_show is not None:
            self.after_show()
        super()._post_loaded()

    def _update_in_place(self, entries):
        keys = [str(key) for key, _, _ in entries]
        if not keys or keys != list(self._cells):
            return False
        for key, cells, record in entries:
            key = str(key)
            old = self._cells[key]
            for column, cell, before in zip(self.column_keys, cells, old):
                if cell != before:
                    self.update_cell(key, column, cell, update_width=True)
            self._cells[key] = tuple(cells)
            self.records[key] = record
        return True

    def _fit_columns_anew(self):
        """Columns as wide as their labels, before the rows are added again: a table keeps a column
        as wide as its widest cell ever, and the text must shrink when the window does."""
        for column in self.columns.values():
            column.content_width = cell_len(column.label.plain)

    def _rebuild(self, entries):
        self.clear()
        self._fit_columns_anew()
        self.records = {}
        self._cells = {}
        for key, cells, record in entries:
            self.add_row(*cells, key=str(key))
            self.records[str(key)] = record
            self._cells[str(key)] = tuple(cells)
        self._placeholder(entries)

    @property
    def _shown_empty(self):
        return not self._cells and self.row_count == (1 if self.placeholder else 0)

    def _placeholder(self, entries):
        if not entries and self.placeholder:
            self.add_row(Text("-"), Text(self.placeholder, style="dim"), key="none")

    def current_row(self):
        """The MailingRow under the cursor (None on the placeholder or an empty table)."""
        return self.current_record()
