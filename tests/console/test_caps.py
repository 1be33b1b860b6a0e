"""Throughput caps as the operator sees them (issue 12, part 4): the dashboard says the cap, a cap the
consumers apply otherwise, and each running mailing's expected finish at the rate it sent over the
last minute (from the send journal); the editor says, as you type, what the caps would leave out of
the audience before the end, with the figures `mailings create --dry-run` gives. Judged on the
screen and in the database."""
import datetime as dt
import os
import re

import peewee as pw
from textual.widgets import TextArea

import models
import service
from console.app import MailerApp
from console.format import local_time
from console.screens.mailing_editor import MailingEditor
from console.screens.mailings import MailingsScreen
from domain import mailings, settings, states
from domain.times import utcnow

from console_testkit import SIZE, bulk_clients, open_screen, plain, settle, table_rows, wait_for


def use_caps(**env):
    settings.use(settings.Settings.from_env({**os.environ, **env}))


def started(text, tag, end, count, path, start_at):
    """A running mailing to `count` new clients tagged `tag`, started ten minutes ago (its last
    minute is a whole minute)."""
    bulk_clients(path, count, start=start_at, tag=tag)
    mailing = service.create_mailing(text=text, start="now", end=end, tag=tag)
    states.start_if_due(mailing.id)  # (the service may have started it already)
    assert models.Mailing.get_by_id(mailing.id).state == "running"
    models.Mailing.update(started_at=utcnow() - dt.timedelta(minutes=10)).where(
        models.Mailing.id == mailing.id).execute()
    return mailing


def sent_lately(mailing, n, every=0.3):
    """`n` of its messages sent within the last n * every seconds, journaled as a consumer does."""
    now = utcnow()
    ids = [m.id for m in models.Message.select(models.Message.id).where(models.Message.mailing == mailing.id)
           .order_by(models.Message.id).limit(n)]
    models.Message.update(status="sent", sent_at=now).where(models.Message.id.in_(ids)).execute()
    models.Attempt.insert_many([{"message": i, "mailing_id": mailing.id, "at": now - dt.timedelta(seconds=k * every),
                                 "outcome": "sent", "http_status": 200} for k, i in enumerate(ids)]).execute()


def pending(mailing):
    return models.Message.select().where((models.Message.mailing == mailing.id)
                                         & (models.Message.status == "pending")).count()


def finish_cells(table):
    column = table.column_keys.index("finish")
    return {int(row[0]): row[column] for row in table_rows(table)}


async def test_the_dashboard_says_the_cap_and_each_running_mailings_expected_finish(env):
    use_caps(MAILER_RATE="50", MAILER_RATE_OPERATOR="900=20")
    fast = started("fast", "fast", "+1h", 180, env.path, 0)
    late = started("late", "late", "+1m", 100, env.path, 1000)
    spread = started("spread", "spread", "+30m", 60, env.path, 2000)
    sent_lately(fast, 60)  # 1/s over the minute: its 120 pending take 2 min
    sent_lately(late, 30, every=1)  # 0.5/s: about 30 of its 70 go before its end in a minute
    models.Mailing.update(spread=True).where(models.Mailing.id == spread.id).execute()
    ids = [m.id for m in models.Message.select(models.Message.id).where(models.Message.mailing == spread.id)]
    for k, i in enumerate(ids):  # staggered evenly over the next 20 minutes, as spread does
        models.Message.update(next_attempt_at=utcnow() + dt.timedelta(seconds=20 * (k + 1))).where(
            models.Message.id == i).execute()
    later = service.create_mailing(text="scheduled", start="+1h", end="+2h", tag="fast")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#live-mailings")
        await wait_for(pilot, lambda: table.row_count == 4 and finish_cells(table)[fast.id] != "—",
                       what="the live mailings and their finish")
        cells = finish_cells(table)
        assert table.columns["finish"].label.plain == "Expected finish"
        assert cells[fast.id] == "≈ in 2 min" and pending(fast) == 120
        missed = re.fullmatch(r"after its end: ~(\d+) will not go", cells[late.id])
        # 70 pending, 0.5/s for what is left of the minute (less the time the test took)
        assert missed and pending(late) == 70 and 40 <= int(missed.group(1)) <= 50, cells[late.id]
        last_due = models.Message.select(pw.fn.MAX(models.Message.next_attempt_at)).where(
            (models.Message.mailing == spread.id) & (models.Message.status == "pending")).scalar()
        assert cells[spread.id] == f"spread until {local_time(models.Message.next_attempt_at.python_value(last_due), fmt='%H:%M')}"
        assert cells[later.id] == "—"

        summary = app.screen.query_one("#rate-summary")
        assert "cap 50 messages/s in all; operator 900: 20/s" in plain(summary)
        applied = app.screen.query_one("#rate-applied")
        assert not applied.display
        # a consumer took from the total's bucket with another rate; one took from operator 900's
        # two minutes ago: only the first is what consumers apply now
        models.RateBucket.insert_many([
            {"key": "all", "tokens": 1, "at": models.shared_seconds(), "rate": 30, "unit": "messages"},
            {"key": "operator 900", "tokens": 1, "at": models.shared_seconds() - 120, "rate": 5, "unit": "messages"},
        ]).execute()
        await wait_for(pilot, lambda: applied.display, what="the cap the consumers apply")
        assert plain(applied) == "⚠ consumers apply 30/s in all (here: 50/s)"
        # at 80x24, compact: the finish stays, shorter
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: table.compact and table.columns["finish"].label.plain == "Finish",
                       what="a compact table")
        await wait_for(pilot, lambda: re.fullmatch(r"~\d+ won't go", finish_cells(table)[late.id]),
                       what="the compact finish")
        assert finish_cells(table)[spread.id] == cells[spread.id].replace("spread ", "")
        assert table.virtual_size.width <= table.size.width  # nothing pushed out sideways
        await wait_for(pilot, lambda: "cap 50/s; op 900: 20/s" in plain(summary), what="the cap said shorter")


async def test_the_editor_says_what_the_caps_leave_out_before_the_end_as_you_type(env):
    use_caps(MAILER_RATE="1", MAILER_RATE_OPERATOR="916=0.1")
    bulk_clients(env.path, 100)  # operator 900
    for i in range(20):
        service.create_client(phone=f"7916000{i:04d}", operator="916")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        editor = await open_screen(pilot, "n", MailingEditor)
        audience = editor.query_one("#audience")
        editor.query_one("#text", TextArea).text = "Hi"
        editor.query_one("#end").value = "+1m"
        # no filter: counted by operator; 916's 20 need 200 s at 0.1/s, and the total lets 60 through
        await wait_for(pilot, lambda: "operator 916's cap" in plain(audience), what="the caps' warning")
        assert plain(audience).splitlines()[1] == (
            "⚠ at operator 916's cap of 0.1 messages/s its 20 recipients need 3 min 20 s; the mailing "
            "has 1 min: about 60 of the 120 recipients would not go")
        editor.query_one("#operator").value = "900"
        await wait_for(pilot, lambda: "100 client(s) match" in plain(audience), what="the count for 900")
        line = plain(audience).splitlines()[1]
        assert line == ("⚠ at the cap of 1 messages/s the 100 recipients need 1 min 40 s; the mailing has "
                        "1 min: about 40 would not go")
        # the same figures as `mailings create --dry-run`
        assert line[2:] == mailings.preview_mailing("Hi", "now", "+1m", operator="900")[3].text()
        # time enough: the warning goes (no query: the counts are the same)
        editor.query_one("#end").value = "+10m"
        await wait_for(pilot, lambda: plain(audience).count("\n") == 0, what="no warning")
        assert "100 client(s) match" in plain(audience)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingsScreen), what="saved")
        await settle(pilot)
    mailing = models.Mailing.get()
    assert (mailing.text, mailing.operator) == ("Hi", "900")
    assert dt.timedelta(minutes=9) < mailing.end_at - mailing.start_at <= dt.timedelta(minutes=10)
