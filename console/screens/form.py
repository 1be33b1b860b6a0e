"""Base of the modal forms: tab moves between fields even when keys arrive faster than they are
handled (a paste, tmux send-keys): as priority bindings, tab and shift+tab move the focus before the
following keys are routed, so no character lands in the field that was just left."""
from textual.binding import Binding
from textual.screen import ModalScreen


class FormScreen(ModalScreen):
    BINDINGS = [
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="form.next"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
                id="form.previous"),
    ]
