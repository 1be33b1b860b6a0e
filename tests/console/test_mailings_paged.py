"""The mailings screen pages (it reads one page and its counts, never every mailing), refreshes the
page on screen in place, and the dashboard shows a bounded list of live mailings."""
import datetime as dt

import models
from domain.audience import Filter
import service
from console.app import MailerApp
from console.screens.mailings import MailingsScreen
from domain import stats

from console_testkit import SIZE, plain, table_rows, wait_for

RUNNING = 5  # the oldest mailings run, over 3 clients; the others are scheduled


def many_mailings(count=250):
    """`count` mailings: ids 1-5 running (3 messages each), the rest scheduled, every other one for
    operator 916 only (1 client) and the others for everyone (3 clients)."""
    service.create_client(phone="79001234567")
    service.create_client(phone="79001234568")
    service.create_client(phone="79161234567")
    for _ in range(RUNNING):
        service.create_mailing(text="now", start="now", end="+1h")
    start = dt.datetime(2030, 1, 1, 9)
    rows = [{"text": f"later {i}", "start_at": start, "end_at": start + dt.timedelta(days=1),
             "operator": "916" if i % 2 else None, "state": "scheduled"}
            for i in range(RUNNING + 1, count + 1)]
    with models.db.atomic():
        for i in range(0, len(rows), 100):
            models.Mailing.insert_many(rows[i:i + 100]).execute()
    # mailing 3: two sent, one failed
    messages = [m.id for m in models.Message.select().where(models.Message.mailing == 3).order_by(models.Message.id)]
    models.Message.update(status="sent").where(models.Message.id.in_(messages[:2])).execute()
    models.Message.update(status="failed").where(models.Message.id == messages[2]).execute()


def ids(table):
    return [int(r[0]) for r in table_rows(table)]


def by_id(table, mailing_id):
    return next(r for r in table_rows(table) if r[0] == str(mailing_id))


async def open_mailings(pilot):
    await pilot.press("3")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MailingsScreen), what="mailings screen")
    table = pilot.app.screen.query_one("#mailings-table")
    await wait_for(pilot, lambda: table.row_count > 0 and table.total is not None, what="first page")
    return table


async def test_mailings_page_newest_first_with_counts_of_the_page_only(monkeypatch):
    many_mailings(250)
    asked = []  # the mailing ids of every GROUP BY of counts
    real = stats.status_counts

    def spy(mailing_ids=None):
        asked.append(None if mailing_ids is None else list(mailing_ids))
        return real(mailing_ids)

    monkeypatch.setattr(stats, "status_counts", spy)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_mailings(pilot)
        status = app.screen.query_one("#mailings-status")
        size = table.page_size
        pages = -(-250 // size)
        assert size < 250 and table.row_count == size
        assert ids(table) == list(range(250, 250 - size, -1))  # the newest first
        assert table.total == 250
        assert plain(status).startswith(f"250 mailing(s): 5 running, 245 scheduled · page 1 of {pages}")
        # a scheduled mailing's total is the audience it would have now
        assert "0/1" in by_id(table, 249)[2] and "0/3" in by_id(table, 250)[2]
        await pilot.press("ctrl+pagedown")
        await wait_for(pilot, lambda: table.page == 1, what="page 2")
        assert ids(table) == list(range(250 - size, 250 - 2 * size, -1))
        for page in range(2, pages):
            await pilot.press("ctrl+pagedown")
            await wait_for(pilot, lambda: table.page == page, what=f"page {page + 1}")
        assert ids(table) == list(range(250 - (pages - 1) * size, 0, -1))
        assert f"page {pages} of {pages}" in plain(status)
        row = by_id(table, 3)
        assert row[1] == "running" and "2/3" in row[2] and row[3] == "1"
        assert "0/3" in by_id(table, 1)[2]
        counted = {m.id: models.Message.select().where(models.Message.mailing == m.id,
                                                       models.Message.status == "sent").count()
                   for m in models.Mailing.select().where(models.Mailing.id <= RUNNING)}
        assert {i: f"{counted[i]}/3" in by_id(table, i)[2] for i in counted} == {i: True for i in counted}
        await pilot.press("ctrl+home")
        await wait_for(pilot, lambda: table.page == 0, what="first page again")
        assert ids(table)[0] == 250
    # counts were read a page at a time (never every mailing), each page in one statement
    assert asked and all(a is not None and len(a) <= table.page_size for a in asked)
    pages = [set(range(max(250 - size * (p + 1), 0) + 1, 250 - size * p + 1)) for p in range(pages)]
    assert all(any(set(a) <= p for p in pages) for a in asked)


async def test_a_change_on_the_visible_page_shows_within_seconds_in_place():
    many_mailings(250)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_mailings(pilot)
        await pilot.press("ctrl+end")
        await wait_for(pilot, lambda: table.page == table.pages - 1 and ids(table)[-1] == 1, what="last page")
        table.move_cursor(row=table.get_row_index("2"))
        await pilot.pause()
        assert table.current_row().id == 2
        # another process pauses mailing 4 and sends mailing 1's messages
        service.set_mailing_state(4, "pause")
        models.Message.update(status="sent").where(models.Message.mailing == 1).execute()
        await wait_for(pilot, lambda: by_id(table, 4)[1] == "paused", timeout=2.5, what="paused shown")
        await wait_for(pilot, lambda: "3/3" in by_id(table, 1)[2], timeout=2.5, what="sent shown")
        assert models.Mailing.get_by_id(4).state == "paused"
        last = table.page
        assert table.current_row().id == 2  # the cursor stayed where it was
        # pausing from the screen changes the row under the cursor, on the same page
        await pilot.press("p")
        await wait_for(pilot, lambda: by_id(table, 2)[1] == "paused", timeout=2.5, what="2 paused shown")
        assert models.Mailing.get_by_id(2).state == "paused"
        assert table.page == last and table.current_row().id == 2


async def test_a_new_mailing_appears_on_the_first_page_and_the_cursor_stays_on_its_mailing():
    many_mailings(40)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = await open_mailings(pilot)
        table.move_cursor(row=table.get_row_index("39"))
        await pilot.pause()
        created = service.create_mailing(text="made elsewhere", start="+2h", end="+3h")
        await wait_for(pilot, lambda: ids(table)[0] == created.id, timeout=7, what="new mailing shown")
        assert table.current_row().id == 39
        status = app.screen.query_one("#mailings-status")
        await wait_for(pilot, lambda: plain(status).startswith("41 mailing(s): 5 running, 36 scheduled"),
                       timeout=7, what="new count")
        assert table.total == 41


async def test_dashboard_shows_the_newest_live_mailings_and_says_how_many_more():
    many_mailings(60)
    for i in (55, 56):  # two that can no longer send: not on the dashboard
        service.set_mailing_state(i, "cancel")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#live-mailings")
        await wait_for(pilot, lambda: table.row_count == stats.LIVE_SHOWN, what="live mailings")
        assert ids(table) == [i for i in range(60, 0, -1) if i not in (55, 56)][:50]
        title = plain(app.screen.query_one("#live-title"))
        assert title.endswith("the newest 50 of 58, and 8 more (3: all mailings)")
        assert models.Mailing.select().where(models.Mailing.state.in_(("scheduled", "running", "paused"))
                                             ).count() == 58


def test_audiences_are_counted_once_per_filter_and_again_when_stale(monkeypatch):
    many_mailings(30)  # 25 scheduled: for everyone, or for operator 916
    counted = []
    real = stats.audience_count

    def spy(flt=None, source=None):
        counted.append((flt,))
        return real(flt, source)

    everyone, op916 = (Filter(),), (Filter(("916",)),)  # the cache's keys (stats.audience_key)

    monkeypatch.setattr(stats, "audience_count", spy)
    rows = stats.mailing_page_rows(50, 0)  # the command line: exact, one COUNT per distinct filter
    assert len(counted) == 2 and set(counted) == {everyone, op916}
    assert {r.id: r.total for r in rows if r.state == "scheduled"} == {
        i: 1 if i % 2 else 3 for i in range(RUNNING + 1, 31)}
    now = [0.0]
    cache = stats.AudienceCache(max_age=120, clock=lambda: now[0])
    counted.clear()
    # nothing counted within the budget: the totals are unknown, and counted after (fill)
    assert cache.counts({everyone, op916}, budget=0) == {everyone: None, op916: None}
    assert cache.wanted and not counted
    assert cache.fill() and len(counted) == 2 and not cache.wanted
    counted.clear()
    rows = stats.mailing_page_rows(50, 0, cache)
    assert not counted and {r.total for r in rows if r.state == "scheduled"} == {1, 3}
    service.create_client(phone="79161234568")  # a second client of 916
    now[0] = 121.0  # stale: the old count is shown, and counted again after
    rows = stats.mailing_page_rows(50, 0, cache)
    assert not counted and {r.total for r in rows if r.state == "scheduled"} == {1, 3} and cache.wanted
    assert cache.fill() and len(counted) == 2 and set(counted) == {everyone, op916}
    rows = stats.mailing_page_rows(50, 0, cache)
    assert {r.total for r in rows if r.state == "scheduled"} == {2, 4}
