"""The operator console. `mailer console` runs it; `mailer run` runs it beside a consumer.

Each screen is a mode (1 dashboard, 2 clients, 3 mailings, 4 live log) with its own stack, like the
views of k9s or lazygit. Database work happens in thread workers (console.workers.db_work) that
turn any error into a notification; no key press waits on a query.
"""

from textual.app import App
from textual.binding import Binding

from console.commands import MailerCommands
from console.screens.clients import ClientsScreen
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.log import LogScreen
from console.screens.mailings import MailingsScreen
from console.workers import db_work, deliver, notify_literal
from domain import settings
from service import demo

DARK, LIGHT = "textual-dark", "textual-light"


class MailerApp(App):
    TITLE = "Mailer"
    CSS_PATH = "app.tcss"
    MODES = {"dashboard": DashboardScreen, "clients": ClientsScreen, "mailings": MailingsScreen,
             "log": LogScreen}
    DEFAULT_MODE = "dashboard"
    COMMANDS = App.COMMANDS | {MailerCommands}
    BINDINGS = [
        Binding("1", "goto('dashboard')", "Dash", tooltip="Go to the dashboard", id="app.dashboard"),
        Binding("2", "goto('clients')", "Clients", tooltip="Go to the clients", id="app.clients"),
        Binding("3", "goto('mailings')", "Mailings", tooltip="Go to the mailings", id="app.mailings"),
        Binding("4", "goto('log')", "Log", tooltip="Go to the live send log", id="app.log"),
        Binding("question_mark", "help", "Help", tooltip="Show every key", id="app.help"),
        Binding("D", "demo", "Demo data", show=False, tooltip="Load demo data (500 clients, 2 mailings)",
                id="app.demo"),
        Binding("ctrl+t", "toggle_dark_light", "Theme", show=False, tooltip="Toggle dark/light theme",
                id="app.theme"),
        Binding("q", "quit", "Quit", tooltip="Quit the console", id="app.quit"),
    ]

    def __init__(self, mode=None, **kwargs):
        super().__init__(**kwargs)
        self.start_mode = mode
        self.theme = LIGHT if settings.current().theme == "light" else DARK

    def on_mount(self):
        if self.start_mode and self.start_mode != self.DEFAULT_MODE:
            self.switch_mode(self.start_mode)

    # -- navigation -------------------------------------------------------------------------------

    def action_goto(self, mode):
        if self.current_mode != mode:
            self.switch_mode(mode)
        while len(self.screen_stack) > 1 and not self.screen.is_modal:
            self.pop_screen()

    def action_help(self):
        self.push_screen(HelpScreen())

    def action_toggle_dark_light(self):
        self.theme = LIGHT if self.theme == DARK else DARK

    # -- actions offered in the palette -----------------------------------------------------------

    def action_new_client(self):
        self.action_goto("clients")
        self.screen.action_add()

    def action_new_mailing(self):
        self.action_goto("mailings")
        self.screen.action_new()

    def action_import_csv(self):
        self.action_goto("clients")
        self.screen.action_import()

    def action_demo(self):
        notify_literal(self, "loading demo data…")
        self._load_demo()

    @db_work(group="demo")
    def _load_demo(self):
        summary = demo.load_demo()
        deliver(self, self._demo_loaded, summary)

    def _demo_loaded(self, summary):
        notify_literal(self, f"demo data: {summary['clients']} clients, mailings "
                             f"{', '.join(map(str, summary['mailings']))}")
        reload = getattr(self.screen, "reload", None)
        if reload is not None:
            reload()


def run_console():
    """Run the console on the database models.open_database() connected."""
    MailerApp().run()
