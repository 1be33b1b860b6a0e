"""The console as a new operator uses it (issue 11, items 2, 10, 11, 14, 15, 17, 18): each test drives
the keys and checks the screen and the database (the command line: its output and exit code)."""
import datetime as dt
import io

from textual.widgets import Input

import models
import service
from console.app import MailerApp
from console.format import local_time
from console.screens.client_form import ClientForm
from console.screens.clients import ClientsScreen
from console.screens.confirm import ConfirmScreen
from console.screens.help import HelpScreen
from console.screens.import_csv import ImportScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from console.widgets import Field
from domain import client_import, times, windows

from console_testkit import SIZE, open_screen, plain, settle, table_rows, type_text, wait_for
from test_app import palette


def notes(app):
    return [n.message for n in app._notifications]


# -- item 2: demo data only into an empty database, and no single key for it ----------------------


async def test_demo_data_is_refused_on_a_database_with_clients_and_D_does_nothing():
    service.create_client(phone="79001234567", tag="vip")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("D")  # one Shift from d (delete): no longer a key
        await settle(pilot)
        assert not any("demo" in n for n in notes(app))
        await palette(pilot, "load demo")
        await wait_for(pilot, lambda: any("loads only into an empty one" in n for n in notes(app)),
                       what="the refusal")
        assert next(n for n in app._notifications if "empty one" in n.message).severity == "warning"
        await settle(pilot)
    assert models.Client.select().count() == 1 and models.Mailing.select().count() == 0


def test_the_command_line_refuses_demo_data_on_a_database_with_clients(world):
    world.mailer("clients", "add", "--phone", "79001234567")
    result = world.mailer("demo", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: demo: the database already has clients")
    assert world.query("SELECT count(*) FROM mailing")[0][0] == 0


def test_the_command_line_loads_demo_data_into_an_empty_database(world):
    result = world.mailer("demo", "--clients", "20")
    assert result.returncode == 0 and "demo data: 20 clients" in result.stdout
    assert world.query("SELECT count(*) FROM mailing")[0][0] == 2


# -- item 10: a window that never opens before the end ---------------------------------------------


def test_zones_where_a_window_opens_between_start_and_end():
    start = dt.datetime(2030, 1, 1, 12, 0)  # 15:00 in Moscow, 19:00 in Novosibirsk
    end = start + dt.timedelta(hours=2)
    window = windows.parse_window("18:00-18:30")
    zones = ["Europe/Moscow", "Asia/Novosibirsk"]
    assert windows.zones_where_open(start, end, window, zones) == []  # 18:00 is past in Novosibirsk
    assert windows.zones_where_open(start, end, windows.parse_window("16:00-16:30"), zones) == ["Europe/Moscow"]
    assert windows.zones_where_open(start, end + dt.timedelta(days=1), window, zones) == sorted(zones)


async def test_the_editor_says_a_window_never_opens_before_the_end():
    service.create_client(phone="79001234567", tz="Europe/Moscow")
    service.create_client(phone="79001234568", tz="Europe/Moscow")  # one zone, however many clients
    local = dt.datetime.now(dt.timezone.utc).astimezone(times.zoneinfo.ZoneInfo("Europe/Moscow"))
    opens = local + dt.timedelta(hours=6)
    window = f"{opens:%H:%M}-{opens + dt.timedelta(minutes=30):%H:%M}"
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        editor.query_one("#end", Input).value = "+2h"
        editor.query_one("#window", Input).value = window
        hint = editor.query_one("#field-window", Field).query_one(".field-hint")
        await wait_for(pilot, lambda: "never opens" in plain(hint), what="the warning")
        assert "Europe/Moscow" in plain(hint) and "nobody would get it" in plain(hint)
        editor.query_one("#end", Input).value = "+1d"  # now it opens before the end
        await wait_for(pilot, lambda: "in each client's local time" in plain(hint), what="no warning")
        assert "never" not in plain(hint)


# -- item 11: the detail shows the next attempt, and acts on its mailing ---------------------------


async def test_the_detail_shows_next_attempts_and_pauses_resumes_edits_and_cancels():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hello", start="now", end="+1h")
    state = lambda: models.Mailing.get_by_id(mailing.id).state  # noqa: E731
    message = models.Message.get()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, mailing.id)
        messages = detail.query_one("#messages")
        await wait_for(pilot, lambda: messages.row_count == 1, what="the message")
        labels = [str(c.label) for c in messages.columns.values()]
        assert labels[0] == "#" and "Next attempt" in labels
        shown = table_rows(messages)[0][labels.index("Next attempt")]
        assert shown == local_time(message.next_attempt_at, fmt="%Y-%m-%d %H:%M:%S")  # operator's zone
        summary = lambda: plain(detail.query_one("#detail-summary"))  # noqa: E731
        await pilot.press("p")
        await wait_for(pilot, lambda: state() == "paused" and "paused" in summary(), what="paused")
        await pilot.press("r")
        await wait_for(pilot, lambda: state() == "running" and "running" in summary(), what="resumed")
        await pilot.press("e")
        editor = await wait_for_screen(pilot, MailingEditor)
        assert editor.mailing.id == mailing.id
        await pilot.press("escape")
        await wait_for_screen(pilot, MailingDetailScreen)
        await pilot.press("c")  # asks what the mailings screen asks
        question = await wait_for_screen(pilot, ConfirmScreen)
        assert plain(question.query_one("#question")) == (
            f"Cancel mailing {mailing.id}? Its unsent messages will never be sent.")
        await pilot.press("n")
        await wait_for_screen(pilot, MailingDetailScreen)
        await settle(pilot)
        assert state() == "running"
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: state() == "cancelled" and "cancelled" in summary(), what="cancelled")
        await pilot.press("e")
        await wait_for(pilot, lambda: any("cannot change" in n for n in notes(app)), what="refused")
        assert isinstance(app.screen, MailingDetailScreen)
    assert models.Message.get().status == "cancelled"


async def open_detail(pilot, mailing_id):
    detail = MailingDetailScreen(mailing_id)
    pilot.app.push_screen(detail)
    await wait_for(pilot, lambda: detail.query_one("#attempts").columns, what="the detail composed")
    return detail


async def wait_for_screen(pilot, screen):
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen), what=screen.__name__)
    return pilot.app.screen


# -- item 14: "#" is a message id everywhere -------------------------------------------------------


async def test_hash_is_a_message_id_in_the_detail_as_in_the_log_filter():
    from console.screens.log import parse_filter

    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hello", start="now", end="+1h")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, mailing.id)
        attempts = [str(c.label) for c in detail.query_one("#attempts").columns.values()]
        messages = [str(c.label) for c in detail.query_one("#messages").columns.values()]
    assert attempts[0] == "Attempt id" and "#" not in attempts
    assert messages[0] == "#"
    assert parse_filter("#17") == {"message": 17}


# -- item 15: table keys, q, PgDn/PgUp, Esc in a filter --------------------------------------------


async def test_j_k_g_G_home_end_in_the_tables_even_while_a_refresh_loads():
    for i in range(5):
        service.create_client(phone=f"7900123456{i}")
    for i in range(3):
        service.create_mailing(text=f"m{i}", start="+1h", end="+2h")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        for key, screen, table_id, rows in (("2", ClientsScreen, "#clients-table", 5),
                                            ("3", MailingsScreen, "#mailings-table", 3)):
            await open_screen(pilot, key, screen)
            table = app.screen.query_one(table_id)
            await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} rows")
            await settle(pilot)
            assert table.cursor_row == 0
            await pilot.press("j", "j")
            assert table.cursor_row == 2
            await pilot.press("k")
            assert table.cursor_row == 1
            await pilot.press("G")
            await wait_for(pilot, lambda: table.cursor_row == rows - 1, what="last row by G")
            await pilot.press("g")
            await wait_for(pilot, lambda: table.cursor_row == 0, what="first row by g")
            await pilot.press("end")
            await wait_for(pilot, lambda: table.cursor_row == rows - 1, what="last row by end")
            await pilot.press("home")
            await wait_for(pilot, lambda: table.cursor_row == 0, what="first row by home")
            # The screens refresh their table on a timer, and a refresh's loader replaces a loading
            # one: it once put the cursor back where it was while G's page was on its way (CI, loaded).
            await settle(pilot)
            await pilot.press("j")
            table.action_last_row()  # G: a page to load, the cursor to go on its last row
            app.screen.reload()  # the timer's refresh, before that page is shown
            await settle(pilot)
            assert table.cursor_row == rows - 1
            table.action_first_row()
            table.reload(recount=False)  # a refresh that keeps the row (the clients screen's kind)
            await settle(pilot)
            assert table.cursor_row == 0


async def test_pgdn_moves_by_the_rows_on_screen_and_G_goes_to_the_last_of_all(env):
    from console_testkit import bulk_clients

    bulk_clients(env.path, 250)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2", ClientsScreen)
        table = app.screen.query_one("#clients-table")
        await wait_for(pilot, lambda: table.row_count == 100 and table.total == 250, what="first page")
        await settle(pilot)
        visible = table.scrollable_content_region.height - 1  # the header takes a line
        await pilot.press("pagedown")
        assert table.page == 0 and table.cursor_row == visible  # a screenful, not 100 rows
        await pilot.press("pageup")
        assert table.page == 0 and table.cursor_row == 0
        for _ in range(5):  # to the page's last row, then on to the next page
            await pilot.press("pagedown")
        await wait_for(pilot, lambda: table.page == 1, what="the next page")
        await pilot.press("G")
        await wait_for(pilot, lambda: table.page == 2 and table.cursor_row == table.row_count - 1,
                       what="the last row of all")
        assert table_rows(table)[-1][0] == "1"
        await pilot.press("g")
        await wait_for(pilot, lambda: table.page == 0 and table.cursor_row == 0, what="the first row")


async def test_q_goes_back_from_sub_screens_and_types_into_fields():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hi", start="+1h", end="+2h")  # scheduled: nothing runs
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: app.screen.query_one("#mailings-table").row_count == 1)
        await open_screen(pilot, "enter", MailingDetailScreen)
        await open_screen(pilot, "q", MailingsScreen)  # back, not quit
        form = await open_screen(pilot, "n", MailingEditor)
        form.query_one("#start", Input).focus()
        await pilot.press("end", "q")  # in a field, q is a letter
        assert form.query_one("#start", Input).value == "nowq" and app.screen is form
        form.query_one("#save").focus()
        await open_screen(pilot, "q", MailingsScreen)
        await open_screen(pilot, "2", ClientsScreen)
        form = await open_screen(pilot, "a", ClientForm)
        form.query_one("#cancel").focus()
        await open_screen(pilot, "q", ClientsScreen)
        await open_screen(pilot, "question_mark", HelpScreen)
        await open_screen(pilot, "q", ClientsScreen)
        assert app.is_running
    assert models.Mailing.select().count() == 1 and mailing.state == "scheduled"


async def test_a_console_of_its_own_quits_at_once_and_sending_goes_on():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hi", start="now", end="+1h")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="the app to stop")
        assert not isinstance(app.screen, ConfirmScreen)
    assert models.Mailing.get_by_id(mailing.id).state == "running"  # quitting paused nothing


async def test_the_first_esc_in_a_filter_clears_it_and_the_second_leaves_it():
    service.create_client(phone="79001234567", tag="vip")
    service.create_client(phone="79001234568", tag="new")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "2", ClientsScreen)
        table = screen.query_one("#clients-table")
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("slash")
        await type_text(pilot, "vip")
        await wait_for(pilot, lambda: table.row_count == 1, what="filtered as typed")
        filter_input = screen.query_one("#client-filter", Input)
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 2, what="the filter cleared")
        assert filter_input.value == "" and app.focused is filter_input
        await pilot.press("escape")
        assert app.focused is table


# -- item 17: forms ------------------------------------------------------------------------------


async def test_a_fields_error_goes_when_it_changes_and_a_long_operator_is_refused_whole():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2", ClientsScreen)
        form = await open_screen(pilot, "a", ClientForm)
        await type_text(pilot, "79001234567")
        await pilot.press("tab")
        await type_text(pilot, "12")
        await pilot.press("ctrl+s")
        operator = form.query_one("#field-operator", Field)
        await wait_for(pilot, lambda: operator.error, what="the operator refused")
        await type_text(pilot, "900")  # appended to "12": not cut to 3 characters
        assert form.query_one("#operator", Input).value == "12900"
        assert not operator.error  # the error was about "12"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: operator.error, what="the whole value refused")
        assert "must be 3 digits" in plain(operator.query_one(".field-error"))
        assert "12900" in plain(operator.query_one(".field-error"))
        assert models.Client.select().count() == 0


async def test_the_window_error_is_shown_once():
    service.create_client(phone="79001234567")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        await type_text(pilot, "hello")
        editor.query_one("#window", Input).value = "9:00-25:00"
        field = editor.query_one("#field-window", Field)
        await wait_for(pilot, lambda: "impossible time" in plain(field.query_one(".field-hint")))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: field.error, what="the refusal")
        await pilot.pause()
        hint, error = field.query_one(".field-hint"), field.query_one(".field-error")
        assert "impossible time" in plain(error) and error.display
        assert not hint.display  # the same words are not repeated above it
        editor.query_one("#window", Input).value = "09:00-21:00"
        await pilot.pause()
        assert not field.error and hint.display  # fixed: the refusal goes
        editor.query_one("#text").load_text("")  # a text area too: refused, then changed
        await pilot.press("ctrl+s")
        text_field = editor.query_one("#field-text", Field)
        await wait_for(pilot, lambda: text_field.error, what="the empty text refused")
        editor.query_one("#text").load_text("hello again")
        await pilot.pause()
        assert not text_field.error
    assert models.Mailing.select().count() == 0


async def test_import_reasons_wrap_whole_and_a_file_not_in_utf8_says_so(env, monkeypatch):
    monkeypatch.chdir(env.tmp)
    (env.tmp / "a.csv").write_text("phone,operator,tag,tz\n89001112233,,,\n,,,\n")
    (env.tmp / "b.csv").write_bytes("phone,operator,tag,tz\n79001112233,,Москва,\n".encode("cp1251"))
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "2", ClientsScreen)
        dialog = await open_screen(pilot, "i", ImportScreen)
        await type_text(pilot, "a.csv")
        await pilot.press("enter")
        summary = dialog.query_one("#import-summary")
        await wait_for(pilot, lambda: "imported" in plain(summary), what="the report")
        assert plain(summary) == "imported 0 of 2 row(s); 2 rejected"  # ",,," counts, and is refused
        table = dialog.query_one("#rejected")
        rows = table_rows(table)
        assert rows[0][1].endswith("(did you mean 79001112233?)")
        assert rows[1][0] == "3" and "empty row" in rows[1][1]
        first = next(iter(table.rows.values()))
        assert first.height > 1  # wrapped, not cut
        dialog.query_one("#path", Input).value = "b.csv"
        await pilot.press("enter")
        field = dialog.query_one("#field-file", Field)
        await wait_for(pilot, lambda: field.error, what="the refusal")
        assert "is not UTF-8 text" in plain(field.query_one(".field-error"))
    assert models.Client.select().count() == 0


def test_a_row_of_only_commas_is_counted_and_rejected():
    report = client_import.import_clients(io.StringIO("phone,operator,tag,tz\n79001112233,,,\n,,,\n\n"))
    assert (report.imported, report.total) == (1, 2)
    assert report.rejected == [(3, ",,,", "is an empty row (no phone, no other value)")]


# -- item 18: ctrl+t keeps the theme picked in the palette -----------------------------------------


async def test_ctrl_t_toggles_the_picked_theme_with_its_counterpart():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        app.theme = "solarized-dark"  # what the palette's theme picker sets
        await pilot.press("ctrl+t")
        assert app.theme == "solarized-light"
        await pilot.press("ctrl+t")
        assert app.theme == "solarized-dark"
        app.theme = "nord"  # a dark theme without a light sibling
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        await pilot.press("ctrl+t")
        assert app.theme == "nord"
        app.theme = "catppuccin-frappe"  # latte is light for three dark ones: back to the one picked
        await pilot.press("ctrl+t", "ctrl+t")
        assert app.theme == "catppuccin-frappe"


async def test_under_mailer_run_quitting_while_a_mailing_runs_asks_as_it_stops_the_consumer():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hi", start="now", end="+1h")
    app = MailerApp(owns_consumer=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        question = await wait_for_screen(pilot, ConfirmScreen)
        text = plain(question.query_one("#question"))
        assert f"1 mailing(s) running ({mailing.id})" in text
        assert "also stops the consumer `mailer run` started" in text
        await pilot.press("n")
        await settle(pilot)
        assert app.is_running
        await pilot.press("q")
        await wait_for_screen(pilot, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="the app to stop")
    assert models.Mailing.get_by_id(mailing.id).state == "running"  # quitting paused nothing
