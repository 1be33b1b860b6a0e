"""A spread mailing in the console (issue 12, part 4): the editor's Spread switch says what it means
as it is toggled and saves it, the detail says until when its messages go, and a running one can
stop spreading (what is not tried yet is due at once). Each checked on the screen and in the
database."""
import datetime as dt

import models
import service
from console.app import MailerApp
from console.format import local_time
from console.screens.mailing_detail import MailingDetailScreen
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from domain.times import utcnow

from console_testkit import SIZE, open_screen, plain, settle, type_text, wait_for


def due_times(mailing_id):
    return [m.next_attempt_at for m in models.Message.select(models.Message.next_attempt_at)
            .where(models.Message.mailing == mailing_id).order_by(models.Message.id)]


async def test_the_spread_switch_says_what_it_does_and_the_detail_until_when(tmp_path):
    for n in range(4):
        service.create_client(phone=f"7900123456{n}")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        await type_text(pilot, "evenly")
        hint = editor.query_one("#field-spread .field-hint")
        assert plain(hint) == "off: everything goes from the start, as fast as the gateway takes it"
        await pilot.press(*["tab"] * 10)  # start, end, operator, tags any, all, none, skip recent, window, days, spread
        assert app.focused is editor.query_one("#spread")
        await pilot.press("space")
        assert editor.query_one("#spread").value is True
        assert plain(hint) == "evenly from the start until the end (with a window: until it closes, per client zone)"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="the editor to close")
        mailing = models.Mailing.get()
        assert mailing.spread and mailing.state == "running"
        times = due_times(mailing.id)
        assert times[0] == mailing.started_at and len(set(times)) == 4  # one at once, the rest later
        # the last of four is due three quarters of the way: 60 min less the guard and a 36 s margin
        assert abs((times[-1] - mailing.started_at).total_seconds() - 0.75 * (3600 - 0.5) * 0.99) < 0.01
        await settle(pilot)
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        summary = detail.query_one("#detail-summary")
        await wait_for(pilot, lambda: "spread until" in plain(summary), what="the spread in the summary")
        same_day = local_time(times[-1], fmt="%Y-%m-%d") == local_time(utcnow(), fmt="%Y-%m-%d")
        until = local_time(times[-1], fmt="%H:%M" if same_day else "%Y-%m-%d %H:%M")
        assert f"window -  days every day  spread until {until}\n" in plain(summary)


async def test_a_running_mailing_stops_spreading_and_what_is_left_is_due_now(tmp_path):
    for n in range(3):
        service.create_client(phone=f"7900123456{n}")
    mailing = service.create_mailing(text="slowly", start="now", end="+1h", spread=True)
    assert max(due_times(mailing.id)) > utcnow() + dt.timedelta(minutes=10)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        await settle(pilot)
        editor = await open_screen(pilot, "e", MailingEditor)
        note = plain(editor.query_one(".note"))
        assert note == "This mailing is running: only its text, end and spread can change."
        switch = editor.query_one("#spread")
        assert switch.value is True and not switch.disabled and editor.query_one("#window").disabled
        switch.focus()
        await pilot.press("space")
        hint = editor.query_one("#field-spread .field-hint")
        assert plain(hint) == "off: what is not tried yet goes now, as fast as the gateway takes it"
        before = utcnow()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="the editor to close")
        assert not models.Mailing.get_by_id(mailing.id).spread
        assert all(t <= utcnow() for t in due_times(mailing.id))
        assert max(due_times(mailing.id)) >= before  # made due by the edit, not left at the start
        await settle(pilot)
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        summary = detail.query_one("#detail-summary")
        await wait_for(pilot, lambda: "days every day" in plain(summary), what="the summary")
        assert "spread" not in plain(summary)
