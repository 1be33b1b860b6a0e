"""Base of the modal forms: tab moves between fields even when keys arrive faster than they are
handled (a paste, tmux send-keys): as priority bindings, tab and shift+tab move the focus before the
following keys are routed, so no character lands in the field that was just left."""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from domain import validation
from console.widgets import Field
from console.workers import db_work, deliver


class FormScreen(ModalScreen):
    """A field's refusal goes away as soon as the field changes: it was about the value before."""

    HELP_TITLE = "Forms (client, mailing, import)"
    BINDINGS = [
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="form.next"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
                id="form.previous"),
        # Not a priority binding: typed into a field, q is a letter; elsewhere it goes back, as on
        # every screen above a main one (on a main screen it quits).
        Binding("q", "go_back", "Back", show=False, id="form.back"),
    ]

    def action_go_back(self):
        self.dismiss(None)

    @on(Input.Changed)
    @on(TextArea.Changed)
    def _field_changed(self, event):
        for field in event.control.ancestors:
            if isinstance(field, Field):
                if field.error:
                    field.set_error(None)
                break


class EditForm(FormScreen):
    """A form that saves a record through the domain and shows its refusals next to the fields.

    Subclasses name their FIELDS (each a `#field-NAME` Field around an input `#NAME`, plus a `#save`
    button and a `#form-error` line) and define `submit(fields)`: it calls the domain, which raises
    ValidationError with an error per field, and returns what the screen is dismissed with."""

    FIELDS = ()

    @on(Input.Submitted)  # enter in any one-line field saves
    def _submitted(self, event):
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self, event):
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self, event):
        event.stop()
        self.action_cancel()

    def action_cancel(self):
        self.dismiss(None)

    def action_go_back(self):
        self.action_cancel()

    def save(self, fields):
        self.query_one("#save", Button).disabled = True
        self._save(fields)

    @db_work(group="form-save")
    def _save(self, fields):
        try:
            result = self.submit(fields)
        except validation.ValidationError as exc:
            deliver(self.app, self.show_errors, exc.errors)
            return
        except Exception:
            deliver(self.app, self._enable_save)
            raise
        deliver(self.app, self.dismiss, result)

    def _enable_save(self):
        self.query_one("#save", Button).disabled = False

    def show_errors(self, errors):
        """Each error next to its field (the first one focused); others on the form's error line."""
        self._enable_save()
        first = None
        for name in self.FIELDS:
            self.query_one(f"#field-{name}", Field).set_error(errors.get(name))
            if name in errors and first is None:
                first = name
        other = [f"{k}: {v}" for k, v in errors.items() if k not in self.FIELDS]
        self.query_one("#form-error", Static).update(Text("\n".join(other), style="bold red"))
        if first:
            self.query_one(f"#{first}").focus()
