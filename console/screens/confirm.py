"""Yes/no question before anything destructive."""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from console.widgets import KeyFooter


class ConfirmScreen(ModalScreen[bool]):
    HELP_TITLE = "Confirmation"
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape,q", "answer(False)", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, question, yes_label="Yes"):
        super().__init__()
        self.question = question
        self.yes_label = yes_label

    def compose(self):
        with Vertical(classes="dialog confirm-dialog"):
            yield Label("Please confirm", classes="dialog-title")
            yield Static(Text(self.question), id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes_label} (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")
        yield KeyFooter()

    def on_mount(self):
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def _yes(self):
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no(self):
        self.dismiss(False)

    def action_answer(self, yes):
        self.dismiss(bool(yes))
