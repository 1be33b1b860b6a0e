"""Mailings: the list, the editor, pause/resume/cancel and the detail, driven by keys."""
import datetime as dt

from textual.widgets import Input, TextArea

import models
from domain import times, vocabulary
import service
import tasks
from console.app import MailerApp
from console.screens.confirm import ConfirmScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from console.widgets import Field

from console_testkit import MARKUP, SIZE, plain, send_in_process, settle, table_rows, type_text, wait_for


async def open_mailings(pilot, rows=None):
    await pilot.press("3")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MailingsScreen), what="mailings screen")
    table = pilot.app.screen.query_one("#mailings-table")
    if rows is not None:
        await wait_for(pilot, lambda: table.row_count == rows, what=f"{rows} mailing row(s)")
    return table


def cell(table, row, column):
    return table_rows(table)[row][column]


async def test_create_mailing_entirely_from_the_keyboard():
    service.create_client(phone="79001234567", tag="vip")
    service.create_client(phone="79001234568", tag="new")
    service.create_client(phone="79161234567", tag="vip")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_mailings(pilot, rows=0)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor), what="editor")
        editor = app.screen
        audience = editor.query_one("#audience")
        await wait_for(pilot, lambda: "3 client(s) match" in plain(audience), what="audience of all")
        await type_text(pilot, "Hello, VIPs!")
        assert plain(editor.query_one("#field-text .field-hint")) == "12 / 1000 characters · GSM-7, 1 SMS part"
        await pilot.press("tab")
        await type_text(pilot, "+10m")
        start_hint = plain(editor.query_one("#field-start .field-hint"))
        assert start_hint.startswith("= ") and start_hint.endswith("Europe/Moscow")
        await pilot.press("tab")
        # Three days: a 09:00-21:00 window on Monday to Friday opens within them at any hour of any day
        # (with +2h the editor rightly warned, each evening, that it never opens).
        await type_text(pilot, "+3d")
        await pilot.press("tab")
        await type_text(pilot, "900")
        await wait_for(pilot, lambda: "2 client(s) match" in plain(audience), what="audience of 900")
        await pilot.press("tab")
        await type_text(pilot, "vip")
        await wait_for(pilot, lambda: "1 client(s) match" in plain(audience), what="audience of 900+vip")
        await pilot.press("tab", "tab", "tab", "tab")  # past tags all of, none of and skip recent
        await type_text(pilot, "09:00-21:00")
        assert "only 09:00-21:00" in plain(editor.query_one("#field-window .field-hint"))
        await pilot.press("tab")
        await type_text(pilot, "Mon-Fri")
        assert plain(editor.query_one("#field-days .field-hint")) == "only on mon-fri in each client's local time"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="editor closed")
        mailing = models.Mailing.get()
        assert (mailing.text, mailing.operator, mailing.tag, mailing.window, mailing.weekdays, mailing.state) == (
            "Hello, VIPs!", "900", "vip", "09:00-21:00", "mon-fri", "scheduled")
        assert abs((mailing.start_at - times.utcnow()) - dt.timedelta(minutes=10)) < dt.timedelta(seconds=30)
        assert abs((mailing.end_at - mailing.start_at) - dt.timedelta(days=3, minutes=-10)) < dt.timedelta(seconds=30)
        await wait_for(pilot, lambda: table.row_count == 1, what="row")
        row = table_rows(table)[0]
        assert row[0] == str(mailing.id) and row[1] == "scheduled" and row[-1] == "Hello, VIPs!"
        assert "0/1" in row[2]


async def test_editor_shows_engine_refusals_next_to_fields():
    service.create_client(phone="79001234567", tag="vip")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_mailings(pilot, rows=0)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor))
        editor = app.screen
        await pilot.press("tab")  # empty text
        await type_text(pilot, "+2h")
        await pilot.press("tab")
        await type_text(pilot, "+1h")  # end before start
        await pilot.press("tab")
        await type_text(pilot, "123")  # nobody has it
        await pilot.press("tab", "tab", "tab", "tab", "tab")  # past the tags and skip recent
        await type_text(pilot, "25:00-26:00")
        await pilot.press("ctrl+s")
        end = editor.query_one("#field-end", Field)
        await wait_for(pilot, lambda: end.error, what="end error")
        errors = {name: plain(editor.query_one(f"#field-{name} .field-error"))
                  for name in ("text", "start", "end", "operator", "tag", "window")}
        assert errors["end"] == "✗ must be after the start"
        assert errors["text"] == "✗ must not be empty"
        assert errors["operator"].startswith("✗ no client has operator '123'")
        assert "impossible time" in errors["window"]
        assert errors["start"] == errors["tag"] == ""
        assert app.focused is editor.query_one("#text", TextArea)  # the first bad field
        assert isinstance(app.screen, MailingEditor)
        assert models.Mailing.select().count() == 0
        # fixing a field clears its message as you type
        await type_text(pilot, "hi")
        assert not editor.query_one("#field-text", Field).error
        await pilot.press("escape")
        assert isinstance(app.screen, MailingsScreen)
        assert models.Mailing.select().count() == 0


async def test_pause_resume_and_cancel_with_confirmation():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="hello", start="now", end="+1h")
    assert mailing.state == "running"
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_mailings(pilot, rows=1)
        assert cell(table, 0, 1) == "running"
        await pilot.press("p")
        await wait_for(pilot, lambda: models.Mailing.get_by_id(mailing.id).state == "paused", what="paused")
        await wait_for(pilot, lambda: cell(table, 0, 1) == "paused", what="paused shown")
        await pilot.press("p")  # the engine refuses: shown as a warning, nothing changes
        await settle(pilot)
        assert models.Mailing.get_by_id(mailing.id).state == "paused"
        await pilot.press("r")
        await wait_for(pilot, lambda: models.Mailing.get_by_id(mailing.id).state == "running", what="resumed")
        await wait_for(pilot, lambda: cell(table, 0, 1) == "running", what="running shown")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirmation")
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="question closed")
        await settle(pilot)
        assert models.Mailing.get_by_id(mailing.id).state == "running"
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: models.Mailing.get_by_id(mailing.id).state == "cancelled", what="cancelled")
        await wait_for(pilot, lambda: cell(table, 0, 1) == "cancelled", what="cancelled shown")
        assert models.Message.get().status == "cancelled"


async def test_edit_a_running_mailing_changes_only_text_and_end():
    service.create_client(phone="79001234567")
    mailing = service.create_mailing(text="old text", start="now", end="+1h")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_mailings(pilot, rows=1)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor))
        editor = app.screen
        assert editor.query_one("#text", TextArea).text == "old text"
        assert editor.query_one("#start", Input).disabled and editor.query_one("#operator", Input).disabled
        assert not editor.query_one("#end", Input).disabled
        await pilot.press("ctrl+a", "shift+end")  # select the line, then type over it
        await type_text(pilot, "new text")
        await pilot.press("tab")  # the disabled start is skipped: on to the end
        assert app.focused.id == "end"
        await type_text(pilot, "+3h")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="saved")
        fresh = models.Mailing.get_by_id(mailing.id)
        assert fresh.text == "new text" and fresh.state == "running"
        assert abs(fresh.end_at - times.utcnow() - dt.timedelta(hours=3)) < dt.timedelta(seconds=30)


async def test_markup_in_a_mailing_text_is_shown_literally():
    service.create_client(phone="79001234567", tag=MARKUP)
    mailing = service.create_mailing(text=MARKUP, start="now", end="+1h", tag=MARKUP)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_mailings(pilot, rows=1)
        await settle(pilot)
        assert cell(table, 0, 7) == MARKUP[:table.text_width - 1] + "…"  # as wide as the table leaves it
        assert cell(table, 0, 6) == f"tag {MARKUP}"[:23] + "…"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen), what="detail")
        summary = app.screen.query_one("#detail-summary")
        await wait_for(pilot, lambda: "text:" in plain(summary), what="summary")
        assert f"text: {MARKUP}" in plain(summary)
        assert f"filter: tag {MARKUP}  window" in plain(summary)
        await pilot.press("escape")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor))
        assert app.screen.query_one("#text", TextArea).text == MARKUP
        assert app.screen.query_one("#tag", Input).value == MARKUP
        await pilot.press("escape")
        await settle(pilot)
        assert app.is_running and isinstance(app.screen, MailingsScreen)
    assert models.Mailing.get_by_id(mailing.id).text == MARKUP


async def test_detail_shows_counts_messages_and_every_attempt(sim):
    service.create_client(phone="79001234567")
    service.create_client(phone="79005550000")  # the simulator rejects this one
    mailing = service.create_mailing(text="hello", start="now", end="+1h")
    assert send_in_process(sim) == 2
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_mailings(pilot, rows=1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen), what="detail")
        detail = app.screen
        summary = detail.query_one("#detail-summary")
        await wait_for(pilot, lambda: "counts:" in plain(summary), what="summary")
        text = plain(summary)
        assert "running" in text and "started" in text
        assert "sent 1" in text and "failed 1" in text and "total 2" in text
        messages = detail.query_one("#messages")
        await wait_for(pilot, lambda: messages.row_count == 2, what="messages")
        rows = table_rows(messages)
        assert [r[2] for r in rows] == ["sent", "failed"]
        assert rows[1][-1].startswith("HTTP 4")  # the last error, last (after the next attempt)
        attempts = detail.query_one("#attempts")
        await wait_for(pilot, lambda: attempts.row_count == 1, what="attempts of message 1")
        assert table_rows(attempts)[0][2:4] == ["sent", "200"]
        await pilot.press("down")  # the failed message: its attempt and the gateway's answer
        await wait_for(pilot, lambda: attempts.row_count == 1 and table_rows(attempts)[0][2] == "failed",
                       what="attempts of message 2")
        failed = models.Message.get(models.Message.status == "failed")
        assert f"Attempts of message {failed.id}: 1" == plain(detail.query_one("#attempts-title"))
        assert table_rows(attempts)[0][5].startswith("HTTP 4")
        await pilot.press("s")  # status filter: pending (none)
        await wait_for(pilot, lambda: messages.row_count == 0, what="pending filter")
        assert plain(detail.query_one("#messages-status")).startswith("status pending")
        await pilot.press("s")
        await wait_for(pilot, lambda: messages.row_count == 1, what="sent filter")
        assert detail.query_one("#message-filter").value == "sent"  # `s` writes the status into the filter
        await pilot.press("escape")  # the first escape clears the filter, as in every filter
        await wait_for(pilot, lambda: messages.row_count == 2, what="the filter cleared")
        assert isinstance(app.screen, MailingDetailScreen)
        await pilot.press("escape")  # the next goes back
        assert isinstance(app.screen, MailingsScreen)
    assert mailing.id == 1


async def test_resend_in_doubt_asks_first_and_puts_them_back():
    for i in range(3):
        service.create_client(phone=f"7900123456{i}")
    mailing = service.create_mailing(text="hi", start="now", end="+1h")
    doubtful = [m.id for m in models.Message.select().limit(2)]
    models.Message.update(status=vocabulary.UNKNOWN, in_doubt=True, last_error="in doubt: reset").where(
        models.Message.id.in_(doubtful)).execute()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(MailingDetailScreen(mailing.id))
        summary = lambda: plain(app.screen.query_one("#detail-summary"))  # noqa: E731
        await wait_for(pilot, lambda: "in doubt 2" in summary(), what="two in doubt shown")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert "already have reached its phone" in plain(app.screen.query_one("#question"))
        await pilot.press("n")  # asked, and nothing happened
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen), what="back")
        assert models.Message.select().where(models.Message.status == vocabulary.UNKNOWN).count() == 2
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        await pilot.press("y")
        await wait_for(pilot, lambda: "in doubt 0" in summary(), what="none in doubt")
    statuses = {m.id: m.status for m in models.Message.select()}
    assert all(statuses[i] == vocabulary.PENDING for i in doubtful)
