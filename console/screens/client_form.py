"""Add or edit one client. The domain validates; its messages appear under their fields."""
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Static, TextArea

from domain import clients, mailings, stats, times, validation
import service
from console.screens.form import EditForm
from console.widgets import Field, FormBody, KeyFooter
from console.workers import db_work, deliver

FIELDS = ("phone", "operator", "tag", "tz", "name", "attr")


class ClientForm(EditForm):
    """Dismisses with the saved client (a stats.ClientRow), or None when cancelled."""

    HELP_TITLE = "Client form"
    FIELDS = FIELDS
    DEFAULT_CSS = """
    ClientForm #attr {
        height: 4;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save"),
    ]

    def __init__(self, record=None):
        super().__init__()
        self.record = record  # None: a new client; else the stats.ClientRow to edit

    def initial_values(self):
        r = self.record
        values = {name: "" if r is None else (getattr(r, name) or "") for name in FIELDS if name != "attr"}
        values["attr"] = "" if r is None else "\n".join(f"{k}={v}" for k, v in r.attrs)
        if r is not None:
            values["tag"] = r.tags_text  # every tag, ';'-separated (the first is its `tag`)
        return values

    def compose(self):
        r = self.initial = self.initial_values()
        zone = times.operator_zone()
        title = "New client" if self.record is None else f"Edit client {self.record.id}"
        with Vertical(classes="dialog form-dialog"):
            yield Label(title, classes="dialog-title")
            with FormBody():  # the fields scroll on a short terminal; the buttons stay in view
                yield Field("phone", "Phone", Input(r["phone"], placeholder="79001234567", id="phone"),
                            hint="7 followed by 10 digits")
                # No max_length: it would silently cut what is typed; the domain refuses a wrong value.
                yield Field("operator", "Operator", Input(r["operator"], placeholder="from the phone",
                                                         id="operator"),
                            hint="3-digit code; empty: digits 2-4 of the phone")
                yield Field("tag", "Tags", Input(r["tag"], placeholder="optional", id="tag"),
                            hint="';' between tags, like vip; new")
                yield Field("tz", "Time zone", Input(r["tz"], placeholder=zone, id="tz",
                                                     suggester=SuggestFromList(sorted(validation.known_zones()),
                                                                               case_sensitive=False)),
                            hint=f"IANA name; empty: {zone}")
                yield Field("name", "Name", Input(r["name"], placeholder="optional", id="name"),
                            hint="{name} in a mailing's text")
                yield Field("attr", "Attributes", TextArea(r["attr"], id="attr", tab_behavior="focus",
                                                           show_line_numbers=False, highlight_cursor_line=False),
                            hint="one key=value a line, like city=Omsk: {attr.city} in a text")
            yield Static("", id="form-error", classes="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self):
        self.query_one("#phone", Input).focus()
        self._load_suggestions()

    @db_work(group="client-form-suggest")
    def _load_suggestions(self):
        operators, tags = mailings.filter_values()
        deliver(self.app, self._set_suggestions, operators, tags)

    def _set_suggestions(self, operators, tags):
        self.query_one("#operator", Input).suggester = SuggestFromList(operators)
        self.query_one("#tag", Input).suggester = SuggestFromList(tags, case_sensitive=False)

    def form_values(self):
        values = {name: self.query_one(f"#{name}", Input).value.strip() for name in FIELDS if name != "attr"}
        values["attr"] = self.query_one("#attr", TextArea).text
        return values

    def action_save(self):
        values = self.form_values()
        try:
            attrs = clients.parse_attr_lines(values["attr"])
            before = clients.parse_attr_lines(self.initial["attr"])
        except validation.ValidationError as exc:
            self.show_errors(exc.errors)
            return
        if self.record is None:
            fields = {"phone": values["phone"], "operator": values["operator"] or None,
                      "tag": values["tag"], "tz": values["tz"] or None, "name": values["name"],
                      "attrs": attrs}
        else:
            fields = {k: v for k, v in values.items() if v != self.initial[k] and k != "attr"}
            for key in ("operator", "tz", "phone"):
                if fields.get(key) == "":
                    fields.pop(key)
            # the attributes changed, and those taken out given empty (removed)
            changed = {**{k: "" for k in before if k not in attrs},
                       **{k: v for k, v in attrs.items() if before.get(k) != v}}
            if changed:
                fields["attrs"] = changed
        if "tag" in fields:  # the field lists every tag: they replace the client's
            fields["tags"] = fields.pop("tag")
        self.save(fields)

    def submit(self, fields):
        if self.record is None:
            client = service.create_client(**fields)
        else:
            client = service.edit_client(self.record.id, **fields)
        return stats.ClientRow.of(client)
