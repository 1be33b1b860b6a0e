"""One client: its fields and its messages across every mailing, the newest mailing first, page by
page (times in the operator's zone); enter opens a message in its mailing's detail."""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Static

from console.format import lit, local_time, one_line, outcome_text, page_label
from console.screens.mailing_detail import MailingDetailScreen
from console.widgets import KeyFooter, PagedTable, PageSource
from console.workers import db_work, deliver, notify_literal
from domain import stats, times

TIME = "%Y-%m-%d %H:%M"
# The first five fit 80 columns; "Sent / created": when it was sent, else (dim) when it was created.
# Fixed widths: the first paint must not wait for the cells to be measured (in a real terminal, the
# text and the time showed cut to their labels' width until something else redrew the table).
COLUMNS = [("Mailing", "mailing"), ("Text", "text", 28), ("Status", "status", 10), ("Sent / created", "time", 16),
           ("Attempts", "attempts"), ("#", "id"), ("Last error", "last_error")]


def sent_or_created(m):
    if m.sent_at is not None:
        return lit(local_time(m.sent_at, fmt=TIME))
    return lit(local_time(m.created_at, fmt=TIME), style="dim")


class ClientMessageSource(PageSource):
    """The client's messages across every mailing (stats.client_message_page: one index probe per
    mailing at most, whatever the number of messages)."""

    def __init__(self, client_id):
        self.client_id = client_id

    def count(self):
        return stats.client_message_count(self.client_id)

    def rows(self, offset, limit):
        return [(m.id, (lit(m.mailing_id), one_line(m.mailing_text, 28), outcome_text(m.status),
                        sent_or_created(m), lit(m.attempts), lit(m.id), one_line(m.last_error, 60)), m)
                for m in stats.client_message_page(self.client_id, limit, offset)]


class ClientScreen(Screen):
    SUB_TITLE = "Client"
    HELP_TITLE = "Client"
    AUTO_FOCUS = "#client-messages"
    DEFAULT_CSS = """
    ClientScreen #client-summary {
        height: auto;
        padding: 0 1;
        border: round $primary;
    }
    ClientScreen #client-messages {
        height: 1fr;
    }
    """
    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", id="client.back"),  # q: back, not quit
        Binding("enter", "open", "Open mailing", id="client.open"),
    ]

    def __init__(self, client_id, client=None):
        """`client`: the stats.ClientRow when the caller has it (shown at once, then read again)."""
        super().__init__()
        self.client_id = client_id
        self.client = client

    def compose(self):
        yield Header()
        yield Static("loading…", id="client-summary")
        with Horizontal(classes="bar"):
            yield Label("Messages", classes="section-title")
            yield Static("", id="client-messages-status", classes="status")
        yield PagedTable(COLUMNS, source=ClientMessageSource(self.client_id), id="client-messages")
        yield KeyFooter()

    def on_mount(self):
        self.sub_title = f"Client {self.client_id}"
        self.messages = self.query_one("#client-messages", PagedTable)
        if self.client is not None:
            self._show_client(self.client)
        self._load_client()
        self.messages.reload(page=0, cursor="top")

    def on_screen_resume(self):
        self.messages.reload(recount=True)

    @db_work(group="client-summary")
    def _load_client(self):
        deliver(self.app, self._show_client, stats.client_row(self.client_id))

    def _show_client(self, client):
        self.client = client
        text = Text()
        text.append(f"Client {self.client_id}", style="bold")
        if client is None:  # deleted: its messages keep their phone, and no longer name it
            text.append("  not in the directory (deleted)", style="dim")
        else:
            text.append("\nphone ")
            text.append(client.phone)
            text.append("   operator ")
            text.append(client.operator)
            text.append("   tags " if len(client.tags) > 1 else "   tag ")
            text.append(", ".join(map(repr, client.tags or ((client.tag,) if client.tag else ()))) or "-")
            text.append("   zone ")
            text.append(client.tz)
            text.append("\nname ")
            text.append(client.name or "-")
            if client.attrs:  # every attribute, literally, as a text's {attr.KEY} would name it
                text.append("\nattributes ")
                for i, (key, value) in enumerate(client.attrs):
                    text.append(("   " if i else "") + f"{key}=", style="dim")
                    text.append(value)
        text.append(f"\ntimes in {times.operator_zone()}", style="dim")
        self.query_one("#client-summary", Static).update(text)

    @on(PagedTable.Loaded, "#client-messages")
    def _loaded(self, event):
        text = Text(f"across every mailing, newest first · {page_label(event, 'message')}")
        self.query_one("#client-messages-status", Static).update(text)

    def action_open(self):
        message = self.messages.current_record()
        if message is None:
            notify_literal(self.app, "no message selected", severity="warning")
            return
        self.app.push_screen(MailingDetailScreen(message.mailing_id, message_id=message.id))

    @on(DataTable.RowSelected, "#client-messages")
    def _selected(self, event):
        event.stop()
        self.action_open()
