"""Personal texts in the console (issue 13, part 2), driven by keys: the editor previews a personal
text for the audience's first client and counts its parts on the longest rendering, refuses an
unknown placeholder next to the text; the client form takes a name and attributes, the client's
screen shows them. Checked on screen and in the database."""
import models
import service
from console.app import MailerApp
from console.screens.client import ClientScreen
from console.screens.client_form import ClientForm
from console.screens.clients import ClientsScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from console.widgets import Field

from console_testkit import MARKUP, SIZE, plain, table_rows, type_text, wait_for
from test_clients import open_clients
from test_mailings import open_mailings


async def test_the_editor_previews_a_personal_text_for_a_sample_client_and_saves_it():
    service.create_client(phone="79001234567", name="Анна", attrs={"city": "Омск"})
    service.create_client(phone="79001234568", name=MARKUP, tag="vip")
    service.create_client(phone="79001234569", tag="vip", attrs={"city": "Tver" * 20})
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_mailings(pilot, rows=0)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor), what="editor")
        editor = app.screen
        preview = editor.query_one("#text-preview")
        assert not preview.display  # a text naming nobody has no preview
        await type_text(pilot, "Hi {name|friend} in {attr.city}")
        await wait_for(pilot, lambda: plain(preview) == "for Анна (79001234567): Hi Анна in Омск",
                       what="preview for the first client")
        assert preview.display
        # parts on the longest rendering: an 80-character city makes it 2 parts, a Cyrillic name UCS-2
        hint = editor.query_one("#field-text .field-hint")
        await wait_for(pilot, lambda: "UCS-2 (because of «{name|friend}»), 2 SMS parts" in plain(hint),
                       what="parts on the longest rendering")
        assert plain(hint).endswith("on its longest rendering")
        await wait_for(pilot, lambda: "3 client(s) match" in plain(editor.query_one("#audience")))
        assert "6 SMS parts" in plain(editor.query_one("#audience"))
        await pilot.press("tab", "tab", "tab", "tab")  # text, start, end, operator: on to the tag
        assert editor.focused.id == "tag"
        await type_text(pilot, "vip")
        # the sample follows the filter; a name full of markup is shown as typed
        await wait_for(pilot, lambda: plain(preview) == f"for {MARKUP} (79001234568): Hi {MARKUP} in ",
                       what="preview for the vip client")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="editor closed")
        assert models.Mailing.get().text == "Hi {name|friend} in {attr.city}"


async def test_an_unknown_placeholder_is_refused_next_to_the_text_and_nothing_is_saved():
    service.create_client(phone="79001234567", name="Ann")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_mailings(pilot, rows=0)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor), what="editor")
        editor = app.screen
        await type_text(pilot, "Hi {nmae}")
        assert "unknown placeholder {nmae}" in plain(editor.query_one("#field-text .field-hint"))
        await pilot.press("ctrl+s")
        text = editor.query_one("#field-text", Field)
        await wait_for(pilot, lambda: text.error, what="text refused")
        assert plain(text.query_one(".field-error")) == (
            "✗ unknown placeholder {nmae}: use {name} or {attr.KEY}")
        assert isinstance(app.screen, MailingEditor) and models.Mailing.select().count() == 0


async def test_a_client_gets_a_name_and_attributes_from_the_form_and_shows_them():
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_clients(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientForm), what="client form")
        form = app.screen
        await type_text(pilot, "79001234567")
        await pilot.press("tab", "tab", "tab", "tab")  # phone, operator, tag, zone: on to the name
        assert form.focused.id == "name"
        await type_text(pilot, "Ann Lee")
        await pilot.press("tab")
        await type_text(pilot, "city=Omsk")
        await pilot.press("enter")
        await type_text(pilot, "Bad Key=x")
        await pilot.press("ctrl+s")
        attr = form.query_one("#field-attr", Field)
        await wait_for(pilot, lambda: attr.error, what="attribute refused")
        assert "attribute key 'Bad Key' must be" in plain(attr.query_one(".field-error"))
        assert models.Client.select().count() == 0
        await pilot.press(*["backspace"] * len("Bad Key=x"))
        await type_text(pilot, "size=L")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="form closed")
        client = models.Client.get()
        assert (client.name, client.attrs) == ("Ann Lee", '{"city":"Omsk","size":"L"}')
        await wait_for(pilot, lambda: table.row_count == 1, what="new row")
        assert table_rows(table)[0][-1] == "Ann Lee"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientScreen), what="client screen")
        summary = app.screen.query_one("#client-summary")
        await wait_for(pilot, lambda: "name Ann Lee" in plain(summary), what="name shown")
        assert "attributes city=Omsk   size=L" in plain(summary)
