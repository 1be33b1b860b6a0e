"""The stop list, SMS parts and quiet hours in the console (issue 12, parts 1, 2 and 5): `s` on a client puts its phone
on the stop list or, asked first, takes it off; the editor says how many matching clients opted out,
how many SMS parts the text is, in all (2 recipients x 2 parts) and what they cost, and asks before saving a text of too many parts.
An empty window in a new mailing is MAILER_DEFAULT_WINDOW, and the editor says so. Each checked on the
screen and in the database."""
from textual.widgets import TextArea

import models
import service
from app import GatewayOnFirstUse
from console.app import MailerApp
from console.screens.clients import ClientsScreen
from console.screens.confirm import ConfirmScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from domain import settings

from test_operator_items import notes
from console_testkit import SIZE, open_screen, plain, settle, table_rows, type_text, wait_for

CYRILLIC_71 = "Ж" * 71  # UCS-2, two parts


async def fill(pilot, editor, text):
    """The editor's text, and a start and end an hour apart from an hour from now; hints updated."""
    editor.query_one("#text", TextArea).text = text
    for name, value in (("start", "+1h"), ("end", "+2h")):
        editor.query_one(f"#{name}").value = value
    await settle(pilot)


def stop_list():
    return [(o.phone, o.source) for o in models.OptOut.select().order_by(models.OptOut.phone)]


async def test_s_puts_a_client_on_the_stop_list_and_takes_it_off_when_confirmed():
    service.create_client(phone="79001234567")
    service.create_client(phone="79001234568")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = (await open_screen(pilot, "2", ClientsScreen)).table
        await wait_for(pilot, lambda: table.row_count == 2, what="the clients")
        assert table_rows(table)[0][1] == "79001234568" and table_rows(table)[0][5] == ""
        await pilot.press("s")
        await wait_for(pilot, lambda: table_rows(table)[0][5] == "⊘ opted out", what="the mark")
        assert stop_list() == [("79001234568", "console")]
        assert table_rows(table)[1][5] == ""
        await pilot.press("s")  # on it: asks before taking it off
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "Take 79001234568 off the stop list?" in plain(app.screen.query_one("#question"))
        await pilot.press("n")
        await settle(pilot)
        assert stop_list() == [("79001234568", "console")]
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: table_rows(table)[0][5] == "", what="the mark gone")
        assert stop_list() == []


async def test_the_editor_counts_opted_out_clients_parts_and_cost(monkeypatch):
    monkeypatch.setenv("MAILER_SEGMENT_PRICE", "0.50 EUR")
    settings.reload()
    for n in range(3):
        service.create_client(phone=f"7900123456{n}")
    service.opt_out(["79001234561"])
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        await open_screen(pilot, "n", MailingEditor)
        audience = app.screen.query_one("#audience")
        await wait_for(pilot, lambda: "3 client(s) match" in plain(audience), what="the audience")
        assert "3 client(s) match (no filter), 1 opted out" in plain(audience)
        await type_text(pilot, CYRILLIC_71)
        hint = plain(app.screen.query_one("#field-text .field-hint"))
        assert hint == "71 / 1000 characters · UCS-2 (because of «Ж»), 2 SMS parts"
        await wait_for(pilot, lambda: plain(audience).endswith(" · 4 SMS parts ≈ 2.00 EUR"),
                       what="the parts and the cost of the text typed")


async def test_a_text_of_too_many_parts_is_saved_only_when_confirmed(monkeypatch):
    monkeypatch.setenv("MAILER_MAX_PARTS", "1")
    settings.reload()
    service.create_client(phone="79001234567")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        await fill(pilot, editor, CYRILLIC_71)
        assert "more than 1: asks before saving" in plain(editor.query_one("#field-text .field-hint"))
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "2 parts: more than MAILER_MAX_PARTS (1)" in plain(app.screen.query_one("#question"))
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is editor and models.Mailing.select().count() == 0
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="saved and back")
    assert [m.text for m in models.Mailing.select()] == [CYRILLIC_71]


async def test_a_new_mailing_without_a_window_gets_the_default_one(monkeypatch):
    monkeypatch.setenv("MAILER_DEFAULT_WINDOW", "09:00-21:00")
    settings.reload()
    service.create_client(phone="79001234567")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        await wait_for(pilot, lambda: "MAILER_DEFAULT_WINDOW" in plain(editor.query_one("#field-window .field-hint")),
                       what="the default window said")
        assert plain(editor.query_one("#field-window .field-hint")).startswith("empty: the default 09:00-21:00")
        await fill(pilot, editor, "quiet")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="saved")
    mailing = models.Mailing.get()
    assert (mailing.text, mailing.window) == ("quiet", "09:00-21:00")


async def test_t_sends_the_text_to_the_test_numbers_and_shows_the_answers(monkeypatch, sim):
    monkeypatch.setenv("PROBE_URL", sim.url)
    monkeypatch.setenv("PROBE_TOKEN", sim.token)
    monkeypatch.setenv("MAILER_TEST_PHONES", "79991112233,79005550000")  # the second is refused
    settings.reload()
    monkeypatch.setattr(service, "_sender", GatewayOnFirstUse())  # as app.py installs it; undone after
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text=CYRILLIC_71, start="+1h", end="+2h", confirm_parts=True)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 1, what="the mailing")
        await pilot.press("t")
        await wait_for(pilot, lambda: any("79991112233: sent (HTTP 200)" in n for n in notes(app)), timeout=10,
                       what="the answers")
        answer = next(n for n in app._notifications if "79991112233" in n.message)
        assert "79005550000: failed (HTTP 400)" in answer.message and answer.severity == "error"
    assert [(m["phone"], m["text"]) for m in sim.accepted] == [(79991112233, CYRILLIC_71)]
    assert [(t.phone, t.outcome) for t in models.TestSend.select().order_by(models.TestSend.id)] == [
        ("79991112233", "sent"), ("79005550000", "failed")]
    assert models.Message.select().where(models.Message.mailing == mailing.id).count() == 0
