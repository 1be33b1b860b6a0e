"""The command palette (ctrl+p): go to each screen and run the main actions."""
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class MailerCommands(Provider):
    def commands(self):
        app = self.app
        return [
            ("Go to dashboard", partial(app.action_goto, "dashboard"), "Live mailings, send rate, consumer"),
            ("Go to clients", partial(app.action_goto, "clients"), "The client directory"),
            ("Go to mailings", partial(app.action_goto, "mailings"), "Mailings and their progress"),
            ("Go to live log", partial(app.action_goto, "log"), "The send journal as it happens"),
            ("New client", app.action_new_client, "Add a client"),
            ("New mailing", app.action_new_mailing, "Create a mailing"),
            ("Import clients from CSV", app.action_import_csv, "Import a CSV file of clients"),
            ("Load demo data", app.action_demo, "500 clients and two mailings"),
            ("Toggle dark/light theme", app.action_toggle_dark_light, "Switch between dark and light"),
            ("Show keys", app.action_help, "Every key binding"),
        ]

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
