"""`?`: the keys of the console, from its bindings as they are now (a keymap applied).

First the keys that work right here (the screen under the help, its focused widget and the app, as
Textual resolves them), then every console class's BINDINGS, found by console.keys: nothing here is
a hand-written copy of a binding that could drift from it.
"""
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from console import keys
from console.commands import PALETTE
from console.widgets import KeyFooter

NARROW = 120  # columns
KEY_NAMES = {"enter": "enter"}  # Textual shows ⏎, which reads poorly in a table of words


def key_label(app, key_list):
    """'ctrl+s', 'pgdn, pgup', '?' for a comma-separated list of Textual key names."""
    shown = []
    for key in (k.strip() for k in key_list.split(",")):
        shown.append(KEY_NAMES.get(key) or (key if "+" in key else app.get_key_display(Binding(key, ""))))
    return ", ".join(shown)


def does(binding):
    return binding.tooltip or binding.description or binding.action


def live_rows(screen):
    """[(keys, Binding)] active on `screen` now, one row per action (its keys together): the screen's
    own first (on a short terminal they are the first screenful), then the focused widget's, the
    app's, and Textual's own (which have no id: scrolling, tab, copy)."""
    rows = {}
    for key, active in screen.active_bindings.items():
        b = active.binding
        if b.system or not (b.description or b.tooltip):
            continue
        tier = 3 if not b.id else 0 if active.node is screen else 2 if active.node is screen.app else 1
        rows.setdefault((tier, id(active.node), b.action), (b, []))[1].append(key)
    ordered = sorted(rows, key=lambda k: k[0])  # stable: each tier in Textual's order
    return [(",".join(rows[k][1]), rows[k][0]) for k in ordered]


def catalogue_rows(app):
    """[(title, [(keys, Binding)])] of every console class, with the user's keymap applied."""
    keymap = getattr(app, "user_keymap", {})
    return [(title, [(keymap.get(b.id) or b.key, b) for b in bindings])
            for title, _cls, bindings in keys.binding_sections(type(app)) if bindings]


class HelpScreen(ModalScreen):
    HELP_TITLE = "Help"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Close", id="help.close"),
        Binding("question_mark", "app.pop_screen", "Close", show=False, id="help.close2"),
        Binding("q", "app.pop_screen", "Close", show=False, id="help.close3"),
    ]

    def __init__(self, under=None):
        super().__init__()
        self.under = under  # the screen whose keys are "here"

    def compose(self):
        app = self.app
        # Under 120 columns the where and key columns are narrower (a long title wraps): what a key
        # does keeps room to be read at 80 columns.
        self.narrow = narrow = app.size.width < NARROW
        table = Table(show_header=True, header_style="bold", expand=True, box=None, padding=(0, 1 if narrow else 2))
        table.add_column("Where", style="bold", no_wrap=not narrow, width=18 if narrow else 34)
        table.add_column("Key", no_wrap=not narrow, width=13 if narrow else 16)
        table.add_column("Does", ratio=1)
        sections = []
        if self.under is not None:
            sections.append((f"Here: {keys.title_of(type(self.under))}", live_rows(self.under)))
        sections += catalogue_rows(app)
        for title, rows in sections:
            for i, (key_list, b) in enumerate(rows):
                what = Text(does(b))
                if b.id:  # what a keymap file names (MAILER_KEYMAP)
                    what.append(f"  {b.id}", style="dim")
                table.add_row(Text(title if i == 0 else ""), Text(key_label(app, key_list), style="bold cyan"),
                              what)
            table.add_row(Text(""), Text(""), Text(""))  # a blank line between sections
        palette_key = key_label(app, getattr(app, "user_keymap", {}).get("app.palette") or "ctrl+p")
        for i, (name, _method, _args, help_text) in enumerate(PALETTE):
            table.add_row(Text("Command palette" if i == 0 else ""),
                          Text(palette_key if i == 0 else "", style="bold cyan"),
                          Text(f"{name}: {help_text}"))
        with Vertical(classes="dialog help-dialog"):
            yield Label("Keys (esc closes) · the mouse works too: click rows, buttons and footer keys",
                        classes="dialog-title")
            with VerticalScroll():
                yield Static(table, id="help-table")
        yield KeyFooter()

    def on_resize(self, event):
        if (event.size.width < NARROW) != self.narrow:
            self.refresh(recompose=True)
