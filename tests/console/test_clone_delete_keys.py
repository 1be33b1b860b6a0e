"""Clone and resend, delete and archive in the console (issue 13, parts 3 and 4): `C` opens the editor
pre-filled as a new mailing, whose Only field makes it a resend to the clients of the original's
messages in those statuses (the live count says how many); `d` asks, then deletes a mailing that never
started or archives one that did, which `a` shows again. Each checked on the screen and in the
database."""
from textual.widgets import Input

import models
import service
from console.app import MailerApp
from console.screens.confirm import ConfirmScreen
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen

from test_operator_items import notes
from console_testkit import SIZE, open_screen, plain, send_in_process, table_rows, wait_for

REFUSED = "79005550000"  # the `sim` fixture's gateway refuses it for good


def mailing(mailing_id):
    return models.Mailing.get_or_none(models.Mailing.id == mailing_id)


async def test_C_clones_prefilled_and_only_failed_makes_a_resend_counted_live(sim):
    for phone in (REFUSED, "79005550001", "79005550002"):
        service.create_client(phone=phone, tag="vip")
    source = service.create_mailing(text="sale", start="now", end="+1h", tag="vip", window="any")
    send_in_process(sim)
    assert dict(models.Message.select(models.Message.phone, models.Message.status).tuples())[REFUSED] == "failed"
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 1, what="the mailing")
        await pilot.press("C")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor), what="the editor")
        editor = app.screen
        assert plain(editor.query_one(".dialog-title")) == f"New mailing: a clone of mailing {source.id}"
        assert [editor.field_value(n) for n in ("text", "start", "end", "tag", "window", "only")] == [
            "sale", "now", "+1h", "vip", "any", ""]
        await wait_for(pilot, lambda: "3 client(s) match" in plain(editor.query_one("#audience")),
                       what="the filter's audience")
        editor.query_one("#only", Input).value = "failed"
        await wait_for(pilot, lambda: plain(editor.query_one("#audience")).startswith(
            f"1 client(s) match (the clients of mailing {source.id}'s failed messages, tag vip)"),
            what="the resend's audience")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="the editor closed")
        await wait_for(pilot, lambda: screen.table.row_count == 2, what="the new mailing listed")
    clone = models.Mailing.select().order_by(models.Mailing.id.desc()).first()
    assert (clone.id, clone.text, clone.source_id, clone.source_statuses, clone.state) == (
        source.id + 1, "sale", source.id, "failed", "running")
    assert [m.phone for m in models.Message.select().where(models.Message.mailing == clone.id)] == [REFUSED]


async def test_d_asks_then_deletes_one_never_started_and_archives_one_that_did():
    service.create_client(phone="79001234567")
    started = service.create_mailing(text="went", start="now", end="+1h")
    later = service.create_mailing(text="later", start="+1h", end="+2h")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 2, what="the mailings")
        await pilot.press("d")  # the newest first: the later one
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert f"Delete mailing {later.id}? It never started" in plain(app.screen.query_one("#question"))
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="the question gone")
        assert mailing(later.id) is not None
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: screen.table.row_count == 1, what="the deleted one gone")
        assert mailing(later.id) is None
        await pilot.press("d")  # the running one: refused, no question
        await wait_for(pilot, lambda: f"mailing {started.id} is running; cancel it first" in notes(app),
                       what="the refusal")
        assert not app.screen.is_modal
        service.set_mailing_state(started.id, "cancel")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen)
                       and app.screen.row is not None and app.screen.row.state == "cancelled", what="the detail")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        assert f"Archive mailing {started.id}?" in plain(app.screen.query_one("#question"))
        await pilot.press("y")
        await wait_for(pilot, lambda: "archived" in plain(app.screen.query_one("#detail-summary")),
                       what="the detail saying archived")
        assert mailing(started.id).archived_at is not None
        assert models.Message.select().where(models.Message.mailing == started.id).count() == 1  # kept
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="the list")
        screen.reload()
        await wait_for(pilot, lambda: screen.table.row_count == 0
                       and "1 archived hidden" in plain(screen.query_one("#mailings-status")),
                       what="the archived one hidden")
        await pilot.press("a")
        await wait_for(pilot, lambda: screen.table.row_count == 1, what="the archived one shown")
        assert "cancelled archived" in table_rows(screen.table)[0][1]
