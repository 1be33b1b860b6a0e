"""The client directory, one page at a time (it opens at once with millions of clients)."""
from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from domain import stats, validation
import service
from console.exporting import ExportsView
from console.format import lit, page_label
from console.read_only import writes
from console.screens.client import ClientScreen
from console.screens.client_form import ClientForm
from console.screens.confirm import ConfirmScreen
from console.screens.import_csv import ImportScreen
from console.widgets import FilterBar, PagedTable, PageSource, KeyFooter
from console.workers import db_work, deliver, notify_literal

COLUMNS = [("ID", "id"), ("Phone", "phone"), ("Operator", "operator"), ("Tags", "tag"),
           ("Time zone", "tz"), ("Stop list", "stop"), ("Name", "name")]
OPTED_OUT = Text("⊘ opted out", style="bold red")


class ClientSource(PageSource):
    sorts = stats.CLIENT_SORTS

    def __init__(self, search="", sort=None):
        self.search = search
        self.sort = sort

    def count(self):
        return stats.client_count(self.search)

    def rows(self, offset, limit):
        return [(c.id, (lit(c.id), lit(c.phone), lit(c.operator), lit(c.tags_text), lit(c.tz),
                        OPTED_OUT if c.opted_out else Text(""), lit(c.name)), c)
                for c in stats.client_page(self.search, limit, offset, self.sort)]

    # the whole view, for `x` (export) and `y` (copy a row): console.exporting
    export_name = "clients"

    def export_header(self):
        return tuple(label for label, _ in COLUMNS)

    def export_pages(self):
        return stats.client_pages(self.search)

    def export_values(self, c):
        return (c.id, c.phone, c.operator, c.tags_text, c.tz, "opted out" if c.opted_out else "", c.name)


class ClientsScreen(ExportsView):
    SUB_TITLE = "Clients"
    AUTO_FOCUS = "#clients-table"
    BINDINGS = [
        Binding("enter", "open", "Open", id="clients.open"),
        Binding("slash", "filter", "Filter", id="clients.filter"),
        Binding("a", "add", "Add", id="clients.add"),
        Binding("e", "edit", "Edit", id="clients.edit"),
        Binding("d", "delete", "Delete", id="clients.delete"),
        Binding("i", "import", "Import CSV", id="clients.import"),
        Binding("s", "stop_list", "Stop list", id="clients.stop_list"),
        Binding("escape", "leave_filter", "Clear filter", show=False, id="clients.clear_filter"),
    ]

    def compose(self):
        yield Header()
        yield FilterBar("filter by phone, operator, tag, zone or name", input_id="client-filter", live=True,
                        id="clients-filter")
        yield PagedTable(COLUMNS, source=ClientSource(), id="clients-table")
        yield Static("loading…", id="clients-status", classes="status")
        yield KeyFooter()

    def on_mount(self):
        self._reload_on_resume = False
        self.table = self.query_one(PagedTable)
        self.table.reload(page=0, cursor="top")

    def on_screen_suspend(self):
        # Left for another screen: the data may change meanwhile. Under a dialog: the dialog's
        # callback reloads what it changed.
        self._reload_on_resume = not self.app.screen.is_modal

    def on_screen_resume(self):
        if self._reload_on_resume:
            self.table.reload(recount=True)
        self._reload_on_resume = False

    def reload(self):
        self.table.reload(recount=True)

    def view_export(self):
        return self.table.source

    # -- filter -----------------------------------------------------------------------------------

    def action_filter(self):
        self.query_one(FilterBar).focus_input()

    @on(FilterBar.Applied, "#clients-filter")
    def _filter(self, event):
        if event.value != self.table.source.search:
            self.table.set_source(ClientSource(event.value, self.table.source.sort))
        if event.submitted:
            self.table.focus()

    def action_leave_filter(self):
        self.query_one(FilterBar).leave(self.table)

    @on(PagedTable.Loaded, "#clients-table")
    def _loaded(self, event):
        search = self.table.source.search
        text = Text(page_label(event, "client"))
        if search:
            text.append(" matching ")
            text.append(repr(search))
        self.query_one("#clients-status", Static).update(text)

    # -- actions ----------------------------------------------------------------------------------

    def action_open(self):
        """The client and its messages across every mailing."""
        client = self.table.current_record()
        if client is None:
            notify_literal(self.app, "no client selected", severity="warning")
            return
        self.app.push_screen(ClientScreen(client.id, client))

    @on(DataTable.RowSelected, "#clients-table")
    def _selected(self, event):
        event.stop()
        self.action_open()

    @writes("adding a client")
    def action_add(self):
        self.app.push_screen(ClientForm(), self._saved)

    @writes("editing a client")
    def action_edit(self):
        client = self.table.current_record()
        if client is None:
            notify_literal(self.app, "no client selected", severity="warning")
            return
        self.app.push_screen(ClientForm(client), self._saved)

    def _saved(self, client):
        if client:
            notify_literal(self.app, f"client {client.id} saved ({client.phone})")
            key = str(client.id)
            # an edited client stays on its page; a new one is the newest: first page
            self.table.reload(page=None if key in self.table.records else 0, cursor=key, recount=True)

    @writes("changing the stop list")
    def action_stop_list(self):
        """Put the client's phone on the stop list, or (asking first) take it off."""
        client = self.table.current_record()
        if client is None:
            notify_literal(self.app, "no client selected", severity="warning")
            return
        if not client.opted_out:
            self._stop_list(client, True)
            return

        def answered(yes):
            if yes:
                self._stop_list(client, False)

        self.app.push_screen(ConfirmScreen(f"Take {client.phone} off the stop list? Mailings will reach "
                                           f"it again: only if the client asked for them.",
                                           yes_label="Take it off"), answered)

    @db_work(group="clients-stop-list")
    def _stop_list(self, client, opt_out):
        try:
            if opt_out:
                service.opt_out([client.phone], "console", "put on the stop list from the console")
            else:
                service.opt_in([client.phone])
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, str(exc), severity="error")
            return
        deliver(self.app, self._stop_list_changed, client, opt_out)

    def _stop_list_changed(self, client, opt_out):
        notify_literal(self.app, f"{client.phone} " + ("put on the stop list: no mailing reaches it"
                                                        if opt_out else "taken off the stop list"))
        self.table.reload(cursor=str(client.id), recount=False)

    @writes("deleting a client")
    def action_delete(self):
        client = self.table.current_record()
        if client is None:
            notify_literal(self.app, "no client selected", severity="warning")
            return

        def answered(yes):
            if yes:
                self._delete(client)

        self.app.push_screen(ConfirmScreen(f"Delete client {client.id} ({client.phone}, tag "
                                           f"{client.tag!r})? Its unsent messages are cancelled.",
                                           yes_label="Delete"), answered)

    @db_work(group="clients-delete")
    def _delete(self, client):
        try:
            service.delete_clients([client.id])
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, str(exc), severity="error")
            return
        deliver(self.app, self._deleted, client)

    def _deleted(self, client):
        notify_literal(self.app, f"client {client.id} deleted")
        self.table.reload(recount=True)

    @writes("importing clients")
    def action_import(self):
        def done(imported):
            if imported:
                self.table.reload(page=0, cursor="top", recount=True)

        self.app.push_screen(ImportScreen(), done)
