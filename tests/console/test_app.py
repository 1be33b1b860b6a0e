"""The dashboard and what works everywhere: navigation, help, palette, theme, demo data, errors."""
import datetime as dt

import peewee as pw
from textual.widgets import Sparkline

import models
from domain import clients, states, times
import service
import tasks
from console.app import MailerApp
from console.screens.client_form import ClientForm
from console.screens.clients import ClientsScreen
from console.screens.dashboard import DashboardScreen
from console.screens.help import HelpScreen
from console.screens.log import LogScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from engine import liveness

from textual.command import CommandList, CommandPalette

from console_testkit import SIZE, help_rows, plain, send_in_process, settle, table_rows, type_text, wait_for


async def test_dashboard_shows_consumer_gateway_rate_and_live_mailings(sim):
    service.create_client(phone="79001234567")
    service.create_client(phone="79001234568")
    service.create_client(phone="79005550000")
    running = service.create_mailing(text="now", start="now", end="+1h")
    later = service.create_mailing(text="later", start="+1h", end="+2h")
    assert send_in_process(sim) == 3
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, DashboardScreen)  # the first screen
        consumer = app.screen.query_one("#consumer")
        await wait_for(pilot, lambda: "no consumer alive" in plain(consumer), what="no consumer")
        liveness.beat(f"local simulator {sim.url} token t…")
        await wait_for(pilot, lambda: "1 consumer(s) alive" in plain(consumer), what="consumer alive")
        assert "local simulator" in plain(consumer) and sim.url in plain(consumer)
        assert sum(app.screen.query_one("#rate", Sparkline).data) == 2  # sent in the last 60 s
        assert "2 sent in the last 60 s" in plain(app.screen.query_one("#rate-summary"))
        assert "failed        1 in 60 s" in plain(app.screen.query_one("#failures"))
        rows = table_rows(app.screen.query_one("#live-mailings"))
        assert [(r[0], r[1]) for r in rows] == [(str(later.id), "scheduled"), (str(running.id), "running")]
        assert "2/3" in rows[1][2]
        models.Heartbeat.update(gateway="gateway https://probe.example/v1 token abc…").execute()
        await wait_for(pilot, lambda: "REAL gateway" in plain(consumer), what="real gateway")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen), what="detail")
        assert app.screen.mailing_id == running.id
        await pilot.press("1")  # the screen's key goes back to its base screen
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), what="dashboard again")


async def test_number_keys_switch_screens_and_q_quits():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        for key, screen in (("2", ClientsScreen), ("3", MailingsScreen), ("4", LogScreen),
                            ("1", DashboardScreen), ("3", MailingsScreen)):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, screen), what=screen.__name__)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to stop")
    assert app.return_code == 0 and not app.is_running


async def test_help_lists_every_binding():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        table = app.screen.query_one("#help-table").content
        text = " ".join(" ".join(cell.plain for cell in column._cells) for column in table.columns)
        for words in ("Everywhere", "Clients", "Mailings", "Live log", "Mailing editor", "Import CSV",
                      "Import CSV", "Pause", "Resume", "Delete", "Pause/follow", "Command palette",
                      "Toggle dark/light theme", "Load demo data", "pgdn"):
            assert words in text, words
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def palette(pilot, query):
    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), what="palette")
    await type_text(pilot, query)

    def found():  # the highlighted command is the one searched for (not a result of fewer letters)
        results = pilot.app.screen.query_one(CommandList)
        option = results.get_option_at_index(results.highlighted)
        return all(word in str(option.prompt).lower() for word in query.lower().split())

    await wait_for(pilot, found, what=f"command {query!r}")
    await pilot.press("enter")


async def test_command_palette_offers_the_main_actions():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await palette(pilot, "new client")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientForm), what="client form from palette")
        assert app.current_mode == "clients"
        await pilot.press("escape")
        await palette(pilot, "new mailing")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor), what="editor from palette")
        assert app.current_mode == "mailings"
        await pilot.press("escape")
        await palette(pilot, "live log")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="log from palette")


async def test_theme_toggles_with_ctrl_t_and_the_palette():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-dark"
        await palette(pilot, "toggle dark")
        await wait_for(pilot, lambda: app.theme == "textual-light", what="theme from palette")


async def test_load_demo_data_from_the_palette():
    # `D` no longer loads it (issue 11 item 2: one Shift away from `d`, delete): the palette does.
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await palette(pilot, "load demo")
        await wait_for(pilot, lambda: models.Mailing.select().count() == 2, timeout=15, what="demo data")
        assert models.Client.select().count() == 500
        rows = app.screen.query_one("#live-mailings")
        await wait_for(pilot, lambda: rows.row_count == 2, what="demo mailings on the dashboard")


async def test_a_database_error_is_a_notification_not_a_crash(monkeypatch):
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        def broken(search=""):
            raise pw.OperationalError("database is locked [/x] [@click=app.quit]boom[/]")

        with monkeypatch.context() as patch:
            patch.setattr(clients, "client_query", broken)
            await pilot.press("2")
            await wait_for(pilot, lambda: any("database is locked" in n.message for n in app._notifications),
                           what="error notification")
            note = next(n for n in app._notifications if "database is locked" in n.message)
            assert note.severity == "error" and not note.markup
            await settle(pilot)
            assert app.is_running
        await pilot.press("a")  # the app still works
        await wait_for(pilot, lambda: isinstance(app.screen, ClientForm))


async def test_dashboard_shows_a_paused_gateway_and_mailings_show_why_they_paused():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hi", start="now", end="+1h")
    service.set_mailing_state(mailing.id, "pause", reason="most recent attempts failed [for good]")
    states.set_gateway_pause(times.utcnow() + dt.timedelta(minutes=5), "HTTP 401: token [expired]")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        consumer = app.screen.query_one("#consumer")
        await wait_for(pilot, lambda: "sending paused until" in plain(consumer), what="gateway pause")
        assert "HTTP 401: token [expired]" in plain(consumer)
        await pilot.press("3")
        await wait_for(pilot, lambda: "most recent attempts failed [for good]"
                       in plain(app.screen.query_one("#mailings-status")), what="reason")
