"""The command palette (ctrl+p): go to each screen and run the main actions.

PALETTE is data, so the help screen lists the palette's commands too (some actions, like loading demo
data, have no key of their own on purpose)."""
from textual.command import DiscoveryHit, Hit, Hits, Provider

# (name, app method, its arguments, what it does)
PALETTE = [
    ("Go to dashboard", "action_goto", ("dashboard",), "Live mailings, send rate, consumer"),
    ("Go to clients", "action_goto", ("clients",), "The client directory"),
    ("Go to mailings", "action_goto", ("mailings",), "Mailings and their progress"),
    ("Go to live log", "action_goto", ("log",), "The send journal as it happens"),
    ("New client", "action_new_client", (), "Add a client"),
    ("New mailing", "action_new_mailing", (), "Create a mailing"),
    ("Import clients from CSV", "action_import_csv", (), "Import a CSV file of clients"),
    ("Load demo data", "action_demo", (), "500 clients and two mailings, into an empty database only"),
    ("Toggle dark/light theme", "action_toggle_dark_light", (), "Switch between dark and light"),
    ("Show keys", "action_help", (), "Every key binding"),
]


class MailerCommands(Provider):
    def commands(self):
        app = self.app

        def bound(method, args):
            return lambda: getattr(app, method)(*args)

        return [(name, bound(method, args), help_text) for name, method, args, help_text in PALETTE]

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
