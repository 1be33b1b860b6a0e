"""One labelled form field: the input, a hint line under it and the field's validation message."""
from rich.text import Text
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Label, Static


class Field(Vertical):
    """Wraps an input widget. `name` is the domain field (ValidationError.errors key)."""

    # Textual scopes a widget's DEFAULT_CSS to its descendants (`Field .x`): the field itself is `Field`.
    DEFAULT_CSS = """
    Field {
        height: auto;
    }
    Field .field-row {
        height: auto;
    }
    Field .field-label {
        width: 12;
        padding: 0 1 0 0;
        text-style: bold;
    }
    Field Input {
        width: 1fr;
    }
    Field Input.-textual-compact {
        background: $boost;
    }
    Field TextArea {
        width: 1fr;
        height: 5;
    }
    Field .field-hint {
        padding: 0 0 0 12;
        color: $text-muted;
    }
    Field .field-error {
        height: auto;
        padding: 0 0 0 12;
        color: $text-error;
        text-style: bold;
        display: none;
    }
    Field.-invalid .field-error {
        display: block;
    }
    /* A refusal says it better than the live warning it repeats: one message, not two. */
    Field.-invalid .field-hint.-warning {
        display: none;
    }
    Field.-invalid Input, Field.-invalid TextArea {
        border-left: outer $error;
    }
    """

    def __init__(self, name, label, control, hint=""):
        super().__init__(id=f"field-{name}", classes="field")
        self.field_name = name
        self.label = label
        self.control = control
        self._hint = hint

    def compose(self):
        with Horizontal(classes="field-row"):
            yield Label(self.label, classes="field-label")
            yield self.control
        yield Static(Text(self._hint), classes="field-hint")
        yield Static("", classes="field-error")

    def set_hint(self, text, style="", warning=False):
        """The line under the input; a `warning` (a live "this will be refused") is hidden while the
        field shows the refusal itself."""
        hint = self.query_one(".field-hint", Static)
        hint.update(Text(str(text), style=style))
        hint.set_class(warning, "-warning")

    def set_error(self, message):
        error = self.query_one(".field-error", Static)
        error.update(Text(f"✗ {message}") if message else "")
        self.set_class(bool(message), "-invalid")

    @property
    def error(self):
        return self.has_class("-invalid")


class FormBody(VerticalScroll):
    """The fields of a form dialog. They scroll when the terminal is too short for them all, and the
    field that takes the focus (tab, a refusal) is scrolled into view; what the dialog shows below
    them (the buttons) stays in view."""

    DEFAULT_CSS = """
    FormBody {
        height: auto;
        max-height: 45vh;
        scrollbar-size-vertical: 1;
    }
    """
