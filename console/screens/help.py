"""`?`: every key binding of the console, screen by screen."""
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

KEY_NAMES = {"slash": "/", "question_mark": "?", "space": "space", "escape": "esc", "enter": "enter",
             "pagedown": "pgdn", "pageup": "pgup"}


def key_label(key):
    return ", ".join(KEY_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


def binding_sections():
    """[(title, [Binding])] for the app and every screen and widget with its own keys."""
    from console.app import MailerApp
    from console.screens.client_form import ClientForm
    from console.screens.clients import ClientsScreen
    from console.screens.confirm import ConfirmScreen
    from console.screens.import_csv import ImportScreen
    from console.screens.log import LogScreen
    from console.screens.mailing_detail import MailingDetailScreen
    from console.screens.mailing_editor import MailingEditor
    from console.screens.mailings import MailingsScreen
    from console.widgets.paged_table import PagedTable

    enter_saves = Binding("enter", "", "Save (in a one-line field)")
    tab = Binding("tab,shift+tab", "", "Next / previous field")
    sections = [("Everywhere", MailerApp.BINDINGS + [
                    Binding("ctrl+p", "", "Command palette: screens, new client/mailing, import, demo data"),
                    Binding("ctrl+q", "", "Quit")]),
                ("Dashboard", [Binding("up,down", "", "Move"),
                               Binding("enter", "", "Open the highlighted mailing")]),
                ("Clients", ClientsScreen.BINDINGS), ("Paged tables (clients, messages)", PagedTable.BINDINGS),
                ("Mailings", MailingsScreen.BINDINGS), ("Mailing detail", MailingDetailScreen.BINDINGS + [
                    Binding("up,down", "", "Move; the attempts of the highlighted message show below"),
                    Binding("enter", "", "Focus the attempts of the message")]),
                ("Live log", LogScreen.BINDINGS), ("Client form", ClientForm.BINDINGS + [enter_saves, tab]),
                ("Mailing editor", MailingEditor.BINDINGS + [enter_saves, tab]), ("Import CSV", ImportScreen.BINDINGS + [Binding("enter", "", "Import the file")]),
                ("Confirmation", ConfirmScreen.BINDINGS)]
    return [(title, [b for b in bindings if isinstance(b, Binding)]) for title, bindings in sections]


class HelpScreen(ModalScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Close", id="help.close"),
        Binding("question_mark", "app.pop_screen", "Close", show=False, id="help.close2"),
        Binding("q", "app.pop_screen", "Close", show=False, id="help.close3"),
    ]

    def compose(self):
        table = Table(show_header=True, header_style="bold", expand=True, box=None, padding=(0, 2))
        table.add_column("Where", style="bold", no_wrap=True, width=34)
        table.add_column("Key", no_wrap=True, width=16)
        table.add_column("Does", ratio=1)
        for title, bindings in binding_sections():
            first = True
            for b in bindings:
                table.add_row(Text(title if first else ""), Text(key_label(b.key), style="bold cyan"),
                              Text(b.tooltip or b.description or b.action))
                first = False
        with Vertical(classes="dialog help-dialog"):
            yield Label("Keys (esc closes) · the mouse works too: click rows, buttons and footer keys",
                        classes="dialog-title")
            with VerticalScroll():
                yield Static(table, id="help-table")
        yield Footer(compact=True)
