"""The `/` filter line of the clients screen and the live log: a key hint and one input.

It posts `FilterBar.Applied` when its text should be applied: on enter, and (with `live=True`) once
typing pauses, so a directory of a million clients is not queried at every key stroke.
"""
from textual import on
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label

DEBOUNCE = 0.3  # seconds of no typing before a live filter is applied


class FilterBar(Horizontal):
    DEFAULT_CSS = """
    FilterBar {
        height: 1;
        padding: 0 1;
    }
    FilterBar > .filter-key {
        width: 2;
        color: $accent;
        text-style: bold;
    }
    FilterBar > Input {
        width: 1fr;
        background: $boost;
    }
    """

    class Applied(Message):
        """The filter text to apply now; `submitted` when the operator pressed enter."""

        def __init__(self, bar, value, submitted):
            super().__init__()
            self.bar, self.value, self.submitted = bar, value, submitted

        @property
        def control(self):
            return self.bar

    def __init__(self, placeholder, *, input_id, live=False, **kwargs):
        super().__init__(**kwargs)
        self.placeholder = placeholder
        self.input_id = input_id
        self.live = live
        self._debounce = None

    def compose(self):
        yield Label("/", classes="filter-key")
        yield Input(placeholder=self.placeholder, id=self.input_id, compact=True)

    @property
    def input(self):
        return self.query_one(Input)

    @property
    def value(self):
        return self.input.value.strip()

    def focus_input(self):
        self.input.focus()

    def leave(self, focus_next):
        """escape: in the input, first clear what is typed (and apply that), then go out of it to
        `focus_next`; when not in it, clear the filter. Returns False when there was nothing to do."""
        if self.input.has_focus and not self.input.value:
            focus_next.focus()
        elif self.input.value:
            self.input.value = ""
            self._apply(submitted=False)
        else:
            return False
        return True

    @on(Input.Changed)
    def _typed(self, event):
        event.stop()
        if not self.live:
            return
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE, lambda: self._apply(submitted=False))

    @on(Input.Submitted)
    def _submitted(self, event):
        event.stop()
        self._apply(submitted=True)

    def _apply(self, submitted):
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        self.post_message(self.Applied(self, self.value, submitted))
