"""The live log's lines, each remembering the journal row it shows, with a line cursor.

A RichLog (its lines, scrolling and cap as they are) whose writes are one line each: `records` holds
the journal row of each line, in step with `lines`. While the log follows there is no cursor (the
newest line is the one meant); up/k, a click or g/G put the cursor on a line and post `Browsing`, so
the screen stops following while the operator reads. `current_record()` is the row under the cursor,
else the newest.
"""
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip
from textual.widgets import RichLog


class JournalLog(RichLog):
    HELP_TITLE = "Live log lines"
    COMPONENT_CLASSES = {"journal-log--cursor"}
    DEFAULT_CSS = """
    JournalLog > .journal-log--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    """
    BINDINGS = [
        Binding("up,k", "cursor_up", "Line up", show=False, id="log.line_up"),
        Binding("down,j", "cursor_down", "Line down", show=False, id="log.line_down"),
        Binding("pageup", "cursor_page(-1)", "Page up", show=False, id="log.page_up"),
        Binding("pagedown", "cursor_page(1)", "Page down", show=False, id="log.page_down"),
        Binding("g,home", "cursor_to(0)", "First line", show=False, id="log.first_line"),
        Binding("G,end", "cursor_to(-1)", "Last line", show=False, id="log.last_line"),
    ]

    class Browsing(Message):
        """The operator put the cursor on a line: the log should stop following."""

        def __init__(self, log):
            super().__init__()
            self.log = log

        @property
        def control(self):
            return self.log

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.records = []
        self._cursor = None  # absolute line number (self._start_line counts the lines dropped)

    # -- lines and their rows -----------------------------------------------------------------------

    def write_record(self, content, record, scroll_end=None):
        """Write one line (content without newlines) showing `record`."""
        self.records.append(record)
        if self.max_lines is not None and len(self.records) > self.max_lines:
            del self.records[: len(self.records) - self.max_lines]
        self.write(content, scroll_end=scroll_end)

    def clear(self):
        self.records = []
        self._cursor = None
        return super().clear()

    @property
    def cursor(self):
        """The index in `records` of the line under the cursor, or None (following: no cursor)."""
        if self._cursor is None or not self.records:
            return None
        return min(max(self._cursor - self._start_line, 0), len(self.records) - 1)

    def current_record(self):
        """The journal row under the cursor, else the newest line's (None: no line)."""
        if not self.records:
            return None
        index = self.cursor
        return self.records[-1 if index is None else index]

    def set_cursor(self, index):
        """Put the cursor on line `index` (of `records`; clamped), or remove it (None)."""
        if index is None or not self.records:
            self._cursor = None
        else:
            index = min(max(index, 0), len(self.records) - 1)
            self._cursor = index + self._start_line
            self._show_line(index)
        self.refresh()

    def _show_line(self, index):
        height = self.scrollable_content_region.height
        if index < self.scroll_y:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif height and index >= self.scroll_y + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)

    # -- keys and the mouse -------------------------------------------------------------------------

    def _browse(self, index):
        if not self.records:
            return
        self.set_cursor(index)
        self.post_message(self.Browsing(self))

    def action_cursor_up(self):
        index = self.cursor
        self._browse(len(self.records) - 1 if index is None else index - 1)

    def action_cursor_down(self):
        index = self.cursor
        self._browse(len(self.records) - 1 if index is None else index + 1)

    def action_cursor_page(self, direction):
        index = self.cursor
        step = max(1, self.scrollable_content_region.height - 1)
        self._browse(len(self.records) - 1 if index is None else index + direction * step)

    def action_cursor_to(self, index):
        self._browse(index if index >= 0 else len(self.records) - 1)

    def on_click(self, event: events.Click):
        offset = event.get_content_offset(self)
        if offset is not None and int(self.scroll_y) + offset.y < len(self.records):
            self._browse(int(self.scroll_y) + offset.y)

    # -- drawing ------------------------------------------------------------------------------------

    def render_line(self, y):
        strip = super().render_line(y)
        index = self.cursor
        if index is not None and int(self.scroll_y) + y == index:
            cursor = self.get_component_rich_style("journal-log--cursor")  # over the line's own style
            strip = Strip([Segment(seg.text, (seg.style or Style()) + cursor, seg.control) for seg in strip],
                          strip.cell_length)
        return strip
