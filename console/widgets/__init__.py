"""Reusable widgets of the console."""
from console.widgets.field import Field
from console.widgets.paged_table import PagedTable, PageSource

__all__ = ["Field", "PagedTable", "PageSource"]
