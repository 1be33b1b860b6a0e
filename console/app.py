"""The operator console. `mailer console` runs it; `mailer run` runs it beside a consumer.

Each screen is a mode (1 dashboard, 2 clients, 3 mailings, 4 live log) with its own stack, like the
views of k9s or lazygit. Database work happens in thread workers (console.workers.db_work) that
turn any error into a notification; no key press waits on a query.
"""

from typing import NamedTuple

from textual.app import App
from textual.binding import Binding

from console import keys
from console.commands import MailerCommands
from console.read_only import writes
from console.screens.clients import ClientsScreen
from console.screens.confirm import ConfirmScreen
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.log import LogScreen
from console.screens.mailings import MailingsScreen
from console.themes import DARK, LIGHT, ThemeToggle
from console.workers import db_work, deliver, notify_literal
from domain import mailings, settings, validation
from service import demo


class Child(NamedTuple):
    """A process `mailer run` started beside the console, which the dashboard watches (Popen.poll()
    in its interval, no SQL): what it is ("simulator" or "consumer"), the process, and its log."""
    role: str
    process: object  # .pid and .poll(), as subprocess.Popen
    log: str


class MailerApp(App):
    TITLE = "Mailer"
    HELP_TITLE = "Everywhere"
    CSS_PATH = "app.tcss"
    MODES = {"dashboard": DashboardScreen, "clients": ClientsScreen, "mailings": MailingsScreen,
             "log": LogScreen}
    DEFAULT_MODE = "dashboard"
    COMMANDS = App.COMMANDS | {MailerCommands}
    # Every screen has -narrow (under 120 columns) or -wide, and -short (under 30 rows) or -tall:
    # app.tcss lays the dashboard and the detail out by them at 80x24.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = [
        Binding("1", "goto('dashboard')", "Dash", tooltip="Go to the dashboard", id="app.dashboard"),
        Binding("2", "goto('clients')", "Clients", tooltip="Go to the clients", id="app.clients"),
        Binding("3", "goto('mailings')", "Mailings", tooltip="Go to the mailings", id="app.mailings"),
        Binding("4", "goto('log')", "Log", tooltip="Go to the live send log", id="app.log"),
        Binding("question_mark", "help", "Help", tooltip="Show every key", id="app.help"),
        # Textual adds this binding itself unless the app has one: ours has an id, so a keymap can move it.
        Binding("ctrl+p", "command_palette", "palette", show=False, priority=True, id="app.palette",
                tooltip="Command palette: screens, new client/mailing, import, demo data"),
        Binding("ctrl+t", "toggle_dark_light", "Theme", show=False, tooltip="Toggle dark/light theme",
                id="app.theme"),
        Binding("q", "request_quit", "Quit", id="app.quit",
                tooltip="Quit the console (under `mailer run`, asks while a mailing runs)"),
    ]

    def __init__(self, mode=None, owns_consumer=False, children=(), read_only=False, **kwargs):
        super().__init__(**kwargs)
        self.start_mode = mode
        # `mailer console --read-only`: every action tagged console.read_only.writes refuses.
        self.read_only = read_only
        if read_only:
            self.title = f"{self.TITLE} · READ-ONLY"
        # Under `mailer run` the consumer is this console's child and goes with it; under
        # `mailer console` it runs on its own.
        self.owns_consumer = owns_consumer
        # What `mailer run` started (Child), watched by the dashboard (not `children`: Textual's own).
        self.child_processes = tuple(children)
        self.theme = LIGHT if settings.current().theme == "light" else DARK
        self.user_keymap = {}  # binding id -> keys, from MAILER_KEYMAP (the help shows them)
        self._clashes_told = set()
        self._theme_toggle = ThemeToggle()

    def on_mount(self):
        self.load_keymap(settings.current().keymap)
        if self.start_mode and self.start_mode != self.DEFAULT_MODE:
            self.switch_mode(self.start_mode)

    # -- the operator's keymap --------------------------------------------------------------------

    def load_keymap(self, path):
        """Rebind keys by binding id from the file at `path` (none: the default keys). A file with any
        error is not applied at all, and says why in a notification: half a keymap surprises more."""
        if not path:
            return
        try:
            keymap = keys.read_keymap(path, keys.known_ids(type(self)))
        except keys.KeymapError as exc:
            notify_literal(self, exc, title=f"Keymap {path} not applied", severity="error", timeout=15)
            return
        self.user_keymap = keymap
        self.set_keymap(keymap)

    def handle_bindings_clash(self, clashed_bindings, node):
        # Textual calls this at every key press while the clash lasts: tell the operator once.
        new = {b for b in clashed_bindings if (b.id, b.key) not in self._clashes_told}
        if new:
            self._clashes_told |= {(b.id, b.key) for b in new}
            lost = ", ".join(f"{b.key} ({b.description or b.action})" for b in new)
            notify_literal(self, f"the keymap takes these keys from their default use: {lost}",
                           title="Keymap", severity="warning", timeout=10)

    # -- navigation -------------------------------------------------------------------------------

    def action_goto(self, mode):
        if self.current_mode != mode:
            self.switch_mode(mode)
        while len(self.screen_stack) > 1 and not self.screen.is_modal:
            self.pop_screen()

    def action_help(self):
        self.push_screen(HelpScreen(under=self.screen))

    def action_request_quit(self):
        # Only quitting `mailer run` stops sending (its consumer is this console's child): that asks
        # while a mailing runs. A console of its own quits at once; its consumer sends on.
        if self.owns_consumer:
            self._check_running()
        else:
            self.exit()

    @db_work(group="quit")
    def _check_running(self):
        try:
            running = mailings.running_mailing_ids()
        except Exception:  # noqa: BLE001 - a broken database must not keep the operator in
            running = None
        deliver(self, self._confirm_quit, running)

    def _confirm_quit(self, running):
        """running: the running mailings' ids ([]: none, quit at once; None: the database failed)."""
        if running == []:
            self.exit()
            return
        if running is None:
            what = "The database cannot say whether a mailing is running."
        else:
            ids = ", ".join(map(str, running[:10])) + (", …" if len(running) > 10 else "")
            what = f"{len(running)} mailing(s) running ({ids})."

        def answered(yes):
            if yes:
                self.exit()

        after = ("Quitting also stops the consumer `mailer run` started: nothing is sent until a "
                 "consumer runs again (nothing is lost).")
        self.push_screen(ConfirmScreen(f"{what} Quit the console? {after}", yes_label="Quit"), answered)

    def action_toggle_dark_light(self):
        self.theme = self._theme_toggle.next(self.theme, self.available_themes)

    # -- actions offered in the palette -----------------------------------------------------------

    @writes("adding a client")
    def action_new_client(self):
        self.action_goto("clients")
        self.screen.action_add()

    @writes("creating a mailing")
    def action_new_mailing(self):
        self.action_goto("mailings")
        self.screen.action_new()

    @writes("importing clients")
    def action_import_csv(self):
        self.action_goto("clients")
        self.screen.action_import()

    @writes("loading demo data")
    def action_demo(self):
        notify_literal(self, "loading demo data…")
        self._load_demo()

    @db_work(group="demo")
    def _load_demo(self):
        try:
            summary = demo.load_demo()
        except validation.ValidationError as exc:  # not an empty database: nothing was loaded
            deliver(self, notify_literal, self, "; ".join(exc.errors.values()), title="Demo data",
                    severity="warning", timeout=10)
            return
        deliver(self, self._demo_loaded, summary)

    def _demo_loaded(self, summary):
        notify_literal(self, f"demo data: {summary['clients']} clients, mailings "
                             f"{', '.join(map(str, summary['mailings']))}")
        reload = getattr(self.screen, "reload", None)
        if reload is not None:
            reload()


def run_console(owns_consumer=False, children=(), read_only=False):
    """Run the console on the database models.open_database() connected (read_only: opened so);
    `children`: the processes `mailer run` started beside it (Child)."""
    MailerApp(owns_consumer=owns_consumer, children=children, read_only=read_only).run()
