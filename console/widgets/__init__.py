"""Reusable widgets of the console; each carries its own styles (DEFAULT_CSS)."""
from console.widgets.field import Field, FormBody
from console.widgets.filter_bar import FilterBar
from console.widgets.footer import KeyFooter
from console.widgets.journal_log import JournalLog
from console.widgets.keyed_table import KeyedTable
from console.widgets.mailing_table import MailingSource, MailingTable
from console.widgets.paged_table import PagedTable, PageSource

__all__ = ["Field", "FilterBar", "FormBody", "JournalLog", "KeyedTable", "KeyFooter", "MailingSource", "MailingTable",
           "PagedTable", "PageSource"]
