"""The console at 80x24 and on wide terminals (issue 11, item 16): tab brings a form's fields and
buttons into view and saves, the footer keeps the global keys, mailing texts take the width there is.
The real console in tmux at both sizes: test_tmux.py."""
from textual.widgets import Button
from textual.widgets._footer import FooterKey

import models
import service
from console.app import MailerApp
from console.screens.client_form import ClientForm
from console.screens.clients import ClientsScreen
from console.screens.dashboard import DashboardScreen
from console.screens.log import LogScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from console.widgets import KeyFooter, MailingTable

from console_testkit import open_screen, plain, settle, table_rows, type_text, wait_for

SMALL = (80, 24)
LONG_TEXT = "Spring sale: orders over 1000 roubles ship free until May 31; reply STOP to opt out"


def in_view(screen, widget):
    """Is all of `widget` on the screen, clipped by nothing (a dialog, a scrolled container)?"""
    try:
        geometry = screen.find_widget(widget)
    except Exception:  # not on screen at all
        return False
    return geometry.visible_region == geometry.region and screen.region.contains_region(geometry.region)


async def tab_to(pilot, widget_id, steps):
    """Tab `steps` times; each field that takes the focus is brought into view; the last is `widget_id`."""
    screen = pilot.app.screen
    for _ in range(steps):
        await pilot.press("tab")
        await wait_for(pilot, lambda: screen.focused is not None and in_view(screen, screen.focused),
                       what=f"{screen.focused} in view")
    assert screen.focused.id == widget_id, screen.focused


async def test_the_editor_at_80x24_scrolls_to_each_field_and_tab_reaches_save():
    for phone in ("79001234567", "79001234568", "79161234567"):
        service.create_client(phone=phone)
    app = MailerApp()
    async with app.run_test(size=SMALL) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        audience = editor.query_one("#audience")
        await wait_for(pilot, lambda: "3 client(s) match (no filter)" in plain(audience), what="count")
        assert not in_view(editor, editor.query_one("#window"))  # below the fold at first
        await type_text(pilot, "Sent from 80x24")
        await tab_to(pilot, "operator", 3)  # text -> start -> end -> operator
        await type_text(pilot, "900")
        await wait_for(pilot, lambda: "2 client(s) match (operator 900)" in plain(audience), what="count")
        assert in_view(editor, audience)
        await tab_to(pilot, "skip_recent", 4)  # tags any, all and none of, skip recent
        await tab_to(pilot, "window", 1)
        await tab_to(pilot, "days", 1)
        await tab_to(pilot, "spread", 1)  # the last field, scrolled into view
        save = editor.query_one("#save", Button)
        await tab_to(pilot, "save", 1)
        assert in_view(editor, save) and in_view(editor, editor.query_one("#cancel", Button))
        assert in_view(editor, audience)  # the match count stays in view with the buttons
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="saved")
        await settle(pilot)
    mailing = models.Mailing.get()
    assert (mailing.text, mailing.operator) == ("Sent from 80x24", "900")


async def test_the_client_form_at_80x24_tab_reaches_save_in_view():
    app = MailerApp()
    async with app.run_test(size=SMALL) as pilot:
        await open_screen(pilot, "2", ClientsScreen)
        form = await open_screen(pilot, "a", ClientForm)
        assert not in_view(form, form.query_one("#tz"))  # the fields are taller than the screen
        await type_text(pilot, "79001234567")
        await tab_to(pilot, "tz", 3)  # phone -> operator -> tag -> time zone
        await tab_to(pilot, "attr", 2)  # -> name -> attributes, the last field
        await tab_to(pilot, "save", 1)
        assert in_view(form, form.query_one("#save", Button)) and in_view(form, form.query_one("#cancel"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ClientsScreen), what="saved")
        table = app.screen.query_one("#clients-table")
        await wait_for(pilot, lambda: table.row_count == 1, what="the client listed")
        assert table_rows(table)[0][1] == "79001234567"
    assert models.Client.get().phone == "79001234567"


def all_in_view(screen):
    """Whether every key of the footer is laid out whole on screen (after a resize, once redrawn)."""
    return all(in_view(screen, k) for k in screen.query_one(KeyFooter).query(FooterKey))


def footer_keys(screen):
    """The keys the footer shows, every one of them whole on screen."""
    footer = screen.query_one(KeyFooter)
    keys = [k for k in footer.query(FooterKey)]
    hidden = [k.key for k in keys if not in_view(screen, k)]
    assert not hidden, f"footer keys cut: {hidden} ({footer.level=})"
    return [k.key for k in keys]


async def test_the_footer_keeps_the_global_keys_at_80_columns():
    service.create_client(phone="79001234567")
    service.create_mailing(text=LONG_TEXT, start="now", end="+1h")
    app = MailerApp()
    async with app.run_test(size=SMALL) as pilot:
        everywhere = {"1", "2", "3", "4", "question_mark"}
        for key, screen_class in (("1", DashboardScreen), ("2", ClientsScreen), ("3", MailingsScreen),
                                  ("4", LogScreen)):
            screen = await open_screen(pilot, key, screen_class)
            await wait_for(pilot, lambda: everywhere <= set(footer_keys(screen)), what="global keys")
            assert "q" in footer_keys(screen)
        await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: app.screen.query_one(MailingTable).row_count == 1, what="the mailing")
        assert {"n", "e", "p", "r", "c"} <= set(footer_keys(app.screen))
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        # (escape clears the filter first, so q is the back key shown; c gives way at 80 columns)
        await wait_for(pilot, lambda: everywhere | {"q", "s", "e", "p", "r"} <= set(footer_keys(detail)),
                       what="the detail's keys and the global ones")
        # a wide terminal shows every description whole, the palette key too
        await pilot.resize_terminal(200, 50)
        await wait_for(pilot, lambda: detail.query_one(KeyFooter).level == 0 and all_in_view(detail)
                       and {"R", "c", "ctrl+p"} <= set(footer_keys(detail)), what="a footer drawn anew")


async def test_mailing_texts_take_the_width_of_the_terminal():
    service.create_client(phone="79001234567")
    service.create_mailing(text=LONG_TEXT, start="+1h", end="+2h")
    app = MailerApp()
    async with app.run_test(size=(200, 50)) as pilot:
        dashboard = app.screen
        live = dashboard.query_one("#live-mailings", MailingTable)
        await wait_for(pilot, lambda: live.row_count == 1 and live.records, what="the dashboard's mailing")
        assert table_rows(live)[0][-1] == LONG_TEXT
        await open_screen(pilot, "3", MailingsScreen)
        table = app.screen.query_one(MailingTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the mailing")

        def text_cell():
            return table_rows(table)[0][table.column_keys.index("text")]

        assert text_cell() == LONG_TEXT and "end" in table.column_keys
        # 80 columns: compact, the filter and the text still there, the text cut to what is left
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: table.compact and text_cell().endswith("…"), what="a compact table")
        assert table.column_keys == ("id", "state", "progress", "start", "filter", "text")
        assert table_rows(table)[0][table.column_keys.index("filter")] == "everyone"
        at_80 = text_cell()
        assert LONG_TEXT.startswith(at_80[:-1]) and len(at_80) >= 16
        assert table.virtual_size.width <= table.size.width  # nothing pushed out sideways
        # 160 columns: every column again, and more of the text than 28 characters
        await pilot.resize_terminal(160, 50)
        await wait_for(pilot, lambda: not table.compact and len(text_cell()) > 50, what="a wider text")
        assert table.virtual_size.width <= table.size.width
        assert LONG_TEXT.startswith(text_cell().rstrip("…"))
