"""Keys as data: the help screen lists the live bindings, and MAILER_KEYMAP rebinds them by id."""
import pytest

import models
from console import keys
from console.app import MailerApp
from console.screens.client_form import ClientForm
from console.screens.clients import ClientsScreen
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from domain import settings

from console_testkit import SIZE, help_rows, settle, type_text, wait_for


@pytest.fixture
def keymap(env, monkeypatch):
    """Write a keymap file and point MAILER_KEYMAP at it."""
    def write(text):
        path = env.tmp / "keymap.conf"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv("MAILER_KEYMAP", str(path))
        settings.reload()
        return path
    return write


def rows_of(rows, title):
    """The rows of one section of the help (its title is on its first row only)."""
    out, inside = [], False
    for where, key, does in rows:
        if where:
            inside = where == title
        if inside and (key or does):
            out.append((key, does))
    return out


async def test_help_lists_the_bindings_of_the_screen_under_it():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="clients")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        here = rows_of(help_rows(app), "Here: Clients")
        # ClientsScreen.BINDINGS' import key, with the id a keymap names, as active right now
        assert ("i", "Import CSV  clients.import") in here
        assert any(key == "pgdn" for key, _ in here)  # the focused paged table's own keys
        assert ("2", "Go to the clients  app.clients") in here  # and the app's
        # and every screen's section, from the classes' BINDINGS
        assert ("R", "Resend in doubt  detail.resend") in rows_of(help_rows(app), "Mailing detail")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="help closed")


async def test_a_keymap_rebinds_keys_by_binding_id(keymap):
    keymap("# my keys\napp.clients = c\nclients.add: 'n'   # a YAML-style line\n")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")  # no longer the clients key
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="clients by c")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientForm), what="client form by n")
        await type_text(pilot, "79001234567")
        await pilot.press("enter")
        await wait_for(pilot, lambda: models.Client.select().count() == 1, what="client saved")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="form closed")
        await pilot.press("question_mark")  # the help shows the keys as bound now
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        everywhere = rows_of(help_rows(app), "Everywhere")
        assert ("c", "Go to the clients  app.clients") in everywhere
        assert ("n", "Add  clients.add") in rows_of(help_rows(app), "Clients")
        assert not [n for n in app._notifications if n.severity == "error"]
    assert models.Client.get().phone == "79001234567"


async def test_a_bad_keymap_is_a_notification_and_the_default_keys_stay(keymap):
    keymap("app.clients = c\napp.clinets = x\nclients.add = ctrl+\nthis line is wrong\n")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("not applied" in n.title for n in app._notifications),
                       what="keymap notification")
        note = next(n for n in app._notifications if "not applied" in n.title)
        assert note.severity == "error" and not note.markup
        assert "line 2: no binding has the id 'app.clinets' (did you mean app.clients?)" in note.message
        assert "line 3: clients.add: not a key: 'ctrl+'" in note.message
        assert "line 4: expected" in note.message
        await pilot.press("c")  # nothing of the file applies
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="default keys")
        assert app.is_running


async def test_a_missing_keymap_file_is_a_notification(keymap, env):
    keymap("")
    (env.tmp / "keymap.conf").unlink()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any("cannot read" in n.message for n in app._notifications),
                       what="notification")
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="default keys")


def test_every_binding_of_the_console_has_an_id_once():
    seen = {}
    for title, cls, bindings in keys.binding_sections(MailerApp):
        for b in bindings:
            if cls is MailerApp and b.id is None:
                continue  # Textual's own ctrl+q
            assert b.id, f"{title}: {b.key} has no id"
            assert seen.setdefault(b.id, cls) is cls, f"{b.id} is used twice"
