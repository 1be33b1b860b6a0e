"""Issue 11, item 13: enter opens things (a client: its messages across mailings; a live-log line: its
message in its mailing, or its client), `/` filters the mailings and a mailing's messages, and the
tables order by a column in SQL. Each test drives the keys (or the mouse) and checks the screen
against the database, read by the test's own SQL."""
import sqlite3

import models
import service
from console.app import MailerApp
from console.format import local_time
from console.screens.client import ClientScreen
from console.screens.clients import ClientsScreen
from console.screens.log import LogScreen
from console.screens.mailing_detail import MailingDetailScreen, parse_message_filter, with_status
from console.screens.mailings import MailingsScreen
from domain import stats

from console_testkit import (SIZE, bulk_clients, plain, send_in_process, settle, table_rows, type_text,
                             wait_for)
from test_operator_items import notes, open_detail, open_screen


def sql(env, query, *params):
    return env.database.execute_sql(query, params).fetchall()


def column(table, key):
    """The cells of one column, by its key."""
    index = list(table.columns).index(key)
    return [row[index] for row in table_rows(table)]


def header(table, key):
    return table.columns[key].label.plain


async def put_cursor_on(pilot, table, key):
    table.move_cursor(row=table.get_row_index(str(key)))
    await wait_for(pilot, lambda: table.current_key() == str(key), what=f"the cursor on {key}")


async def click_header(pilot, table, key):
    """A real mouse click on the header of column `key`."""
    x = 0
    for column_key, col in table.columns.items():
        if column_key == key:
            break
        x += col.get_render_width(table)
    await pilot.click(table, offset=(x + 1, 0))


def many_mailings(env, count, client_id, others=()):
    """`count` finished mailings, each with a message to `client_id` (and to each of `others`), set
    up in SQL: the client's screen must page them."""
    conn = sqlite3.connect(env.path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO mailing (text, start_at, end_at, state, state_reason, started_at, created_at,"
                " updated_at, spread) VALUES (?, '2026-01-01 09:00:00', '2026-01-01 10:00:00', 'finished', '',"
                " '2026-01-01 09:00:00', '2026-01-01 08:00:00', '2026-01-01 08:00:00', 0)",
                [(f"old news {i}",) for i in range(count)])
            for client in (client_id, *others):
                conn.execute(
                    "INSERT INTO message (mailing_id, client_id, phone, status, created_at, sent_at, attempts,"
                    " last_error, in_doubt) SELECT id, ?, '7900000000' || ?, CASE id % 3 WHEN 0 THEN 'failed'"
                    " ELSE 'sent' END, '2026-01-01 09:00:00', CASE id % 3 WHEN 0 THEN NULL ELSE"
                    " '2026-01-01 09:0' || (id % 10) || ':00' END, 1 + id % 2, '', 0 FROM mailing",
                    (client, client % 10))
    finally:
        conn.close()


# -- enter on a client ---------------------------------------------------------------------------------


async def test_enter_on_a_client_opens_its_messages_across_mailings_and_enter_opens_one(env):
    vip = service.create_client(phone="79001234567", tag="vip")
    other = service.create_client(phone="79001234568", tag="new")
    everyone = service.create_mailing(text="for everyone", start="now", end="+1h")
    for_vip = service.create_mailing(text="for [bold]vip[/bold]", start="now", end="+1h", tag="vip")
    service.create_mailing(text="for new ones", start="now", end="+1h", tag="new")
    service.create_mailing(text="not yet", start="+1d", end="+2d")  # no messages until it starts
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        clients = await open_screen(pilot, "2", ClientsScreen)
        table = clients.query_one("#clients-table")
        await wait_for(pilot, lambda: table.row_count == 2, what="the clients")
        await put_cursor_on(pilot, table, vip.id)
        screen = await open_screen(pilot, "enter", ClientScreen)
        assert screen.client_id == vip.id
        messages = screen.query_one("#client-messages")
        want = sql(env, "SELECT mailing_id, id, created_at FROM message WHERE client_id = ? "
                        "ORDER BY mailing_id DESC", vip.id)
        await wait_for(pilot, lambda: messages.total == len(want) == 2, what="the client's messages")
        assert [int(m) for m in column(messages, "mailing")] == [r[0] for r in want] == [for_vip.id, everyone.id]
        assert [int(m) for m in column(messages, "id")] == [r[1] for r in want]
        assert column(messages, "text") == ["for [bold]vip[/bold]", "for everyone"]  # literal
        assert column(messages, "status") == ["pending", "pending"]
        created = models.Message.get_by_id(want[0][1]).created_at  # not sent: when it was created
        assert column(messages, "time")[0] == local_time(created, fmt="%Y-%m-%d %H:%M")
        summary = plain(screen.query_one("#client-summary"))
        assert "79001234567" in summary and "'vip'" in summary and "times in Europe/Moscow" in summary
        await wait_for(pilot, lambda: "2 message(s)" in plain(screen.query_one("#client-messages-status")),
                       what="the count in the status line")
        assert other.id not in [r[0] for r in sql(env, "SELECT client_id FROM message WHERE id IN (?, ?)",
                                                   *[r[1] for r in want])]
        # enter on a message: its mailing's detail, on that message, with its attempts
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        assert detail.mailing_id == for_vip.id
        shown = detail.query_one("#messages")
        await wait_for(pilot, lambda: shown.total == 1, what="the message alone")
        assert column(shown, "id") == [str(want[0][1])]
        assert detail.query_one("#message-filter").value == f"#{want[0][1]}"
        await wait_for(pilot, lambda: plain(detail.query_one("#attempts-title")).startswith(
            f"Attempts of message {want[0][1]}: 0"), what="its attempts")
        await pilot.press("escape")  # the filter first: every message of the mailing
        count = sql(env, "SELECT count(*) FROM message WHERE mailing_id = ?", for_vip.id)[0][0]
        await wait_for(pilot, lambda: shown.total == count, what="the filter cleared")
        await open_screen(pilot, "escape", ClientScreen)
        await open_screen(pilot, "escape", ClientsScreen)


async def test_the_client_screen_pages_a_client_in_many_mailings(env):
    client = service.create_client(phone="79001234567")
    neighbour = service.create_client(phone="79001234568")
    many_mailings(env, 130, client.id, others=[neighbour.id])
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = ClientScreen(client.id)
        app.push_screen(screen)
        messages = await wait_for_table(pilot, screen, "#client-messages")
        await wait_for(pilot, lambda: messages.total == 130 and messages.row_count == 100, what="page 1")
        page = "SELECT mailing_id, status, attempts FROM message WHERE client_id = ? " \
               "ORDER BY mailing_id DESC LIMIT 100 OFFSET ?"
        assert [(int(m), s, int(a)) for m, s, a in zip(column(messages, "mailing"), column(messages, "status"),
                                                         column(messages, "attempts"))] == sql(env, page, client.id, 0)
        sent = (models.Message.select().where((models.Message.client_id == client.id)
                                              & (models.Message.status == "sent"))
                .order_by(models.Message.mailing.desc()).first())
        row = column(messages, "mailing").index(str(sent.mailing_id))  # sent: when it was sent
        assert column(messages, "time")[row] == local_time(sent.sent_at, fmt="%Y-%m-%d %H:%M")
        await pilot.press("ctrl+pagedown")
        await wait_for(pilot, lambda: messages.page == 1 and messages.row_count == 30, what="page 2")
        assert [int(m) for m in column(messages, "mailing")] == [r[0] for r in sql(env, page, client.id, 100)]
        await wait_for(pilot, lambda: "page 2 of 2 · 130 message(s)" in plain(
            screen.query_one("#client-messages-status")), what="page 2 in the status line")
    assert stats.client_message_count(client.id) == 130
    assert stats.client_message_count(10_000) == 0


async def wait_for_table(pilot, screen, selector):
    await wait_for(pilot, lambda: screen.is_current and screen.query_one(selector).columns, what=selector)
    return screen.query_one(selector)


# -- enter on a live-log line --------------------------------------------------------------------------


async def test_enter_on_a_log_line_opens_its_message_and_c_its_client(env, sim):
    service.create_client(phone="79001234567")
    service.create_client(phone="79005550000")  # the simulator refuses this one
    mailing = service.create_mailing(text="hello", start="now", end="+1h")
    assert send_in_process(sim) == 2
    journal = sql(env, "SELECT id, message_id, client_id FROM attempt ORDER BY id")
    assert len(journal) == 2
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        log = await open_screen(pilot, "4", LogScreen)
        lines = log.query_one("#journal")
        await wait_for(pilot, lambda: not log.backfilling and len(lines.records) == 2, what="two lines")
        assert [r.id for r in lines.records] == [j[0] for j in journal]
        # following, enter means the newest line
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        assert (detail.mailing_id, detail.message_id) == (mailing.id, journal[-1][1])
        await wait_for(pilot, lambda: column(detail.query_one("#messages"), "id") == [str(journal[-1][1])],
                       what="the newest line's message")
        await open_screen(pilot, "q", LogScreen)
        # up puts a cursor on a line (following pauses); enter opens that line's message
        await pilot.press("up", "up")
        assert lines.cursor == 0 and not log.following
        assert "paused" in plain(log.query_one("#log-status"))
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        assert detail.message_id == journal[0][1]
        attempts = detail.query_one("#attempts")
        want = sql(env, "SELECT id FROM attempt WHERE message_id = ? ORDER BY id", journal[0][1])
        await wait_for(pilot, lambda: [int(r[0]) for r in table_rows(attempts)] == [a[0] for a in want],
                       what="its attempts")
        await open_screen(pilot, "q", LogScreen)
        assert lines.cursor == 0  # still on the line it opened
        client = await open_screen(pilot, "c", ClientScreen)
        assert client.client_id == journal[0][2]
        messages = client.query_one("#client-messages")
        want = sql(env, "SELECT id FROM message WHERE client_id = ? ORDER BY mailing_id DESC", journal[0][2])
        await wait_for(pilot, lambda: [int(i) for i in column(messages, "id")] == [m[0] for m in want],
                       what="the client's messages")
        phone = sql(env, "SELECT phone FROM client WHERE id = ?", journal[0][2])[0][0]
        await wait_for(pilot, lambda: phone in plain(client.query_one("#client-summary")), what="its phone")
        await open_screen(pilot, "q", LogScreen)
        await pilot.press("space")  # following again: no cursor, the newest line is meant
        assert log.following and lines.cursor is None
        assert lines.current_record().id == journal[-1][0]


# -- the mailings' filter ------------------------------------------------------------------------------


MATCH = ("SELECT id FROM mailing WHERE text LIKE ?1 OR state LIKE ?1 OR tag LIKE ?1 OR operator LIKE ?1"
         " OR id = ?2 ORDER BY id DESC")


async def test_slash_filters_the_mailings_by_text_id_state_tag_and_operator(env):
    service.create_client(phone="79001234567", tag="vip")
    service.create_client(phone="79161234567")
    texts = ["spring sale", "autumn SALE", "news", "hello", "sale of the year"]
    made = [service.create_mailing(text=t, start="+1d", end="+2d", tag="vip" if i == 3 else None,
                                   operator="916" if i == 2 else None) for i, t in enumerate(texts)]
    service.set_mailing_state(made[2].id, "cancel")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "3", MailingsScreen)
        table = screen.query_one("#mailings-table")
        await wait_for(pilot, lambda: table.row_count == 5, what="every mailing")
        status = screen.query_one("#mailings-status")
        await pilot.press("slash")
        for typed, number in (("sale", -1), ("cancel", -1), ("vip", -1), ("916", -1),
                              (f"#{made[1].id}", made[1].id)):
            screen.query_one("#mailing-filter").value = ""
            await type_text(pilot, typed)
            want = [r[0] for r in sql(env, MATCH, f"%{typed}%", number)]
            await wait_for(pilot, lambda: [int(i) for i in column(table, "id")] == want
                           and f"{len(want)} mailing(s) matching {typed!r}" in plain(status),
                           what=f"filtered by {typed!r}")
            assert want
        assert [int(i) for i in column(table, "id")] == [made[1].id]
        await pilot.press("enter")  # applies the filter and goes to the table: it opens nothing
        await wait_for(pilot, lambda: app.focused is table, what="the table focused")
        assert isinstance(app.screen, MailingsScreen)
        await pilot.press("escape")  # as in the clients' filter: the first escape clears it
        await wait_for(pilot, lambda: table.row_count == 5, what="the filter cleared")
        assert screen.query_one("#mailing-filter").value == ""
        await pilot.press("slash")
        await type_text(pilot, "nothing like it")
        await wait_for(pilot, lambda: table.row_count == 0 and table.total == 0, what="no match")
        assert "0 mailing(s) matching 'nothing like it'" in plain(status)
        await pilot.press("escape")  # in the input: clears it, stays in it
        await wait_for(pilot, lambda: table.row_count == 5, what="the filter cleared")
        assert app.focused is screen.query_one("#mailing-filter")
        await pilot.press("escape")  # then leaves it
        assert app.focused is table


# -- the detail's filter ---------------------------------------------------------------------------------


def test_the_message_filter_reads_phones_statuses_and_message_ids():
    assert parse_message_filter("7900 failed") == {"phone": "7900", "status": "failed", "message": None}
    assert parse_message_filter("#17") == {"phone": "", "status": None, "message": 17}
    assert parse_message_filter("in doubt") == {"phone": "", "status": "unknown", "message": None}
    assert with_status("7900 failed", "sent") == "7900 sent"
    assert with_status("7900 in doubt", None) == "7900"
    for bad in ("vip", "failed sent", "7900 7901"):
        try:
            parse_message_filter(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was read")


async def test_slash_filters_a_mailings_messages_by_phone_and_status(env):
    for i in range(12):
        service.create_client(phone=f"7900{'111' if i % 3 == 0 else '222'}{i:04d}")
    mailing = service.create_mailing(text="hi", start="now", end="+1h")
    failed = [m.id for m in models.Message.select().where(models.Message.mailing == mailing.id)
              .order_by(models.Message.id)][::2]
    models.Message.update(status="failed").where(models.Message.id.in_(failed)).execute()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        detail = await open_detail(pilot, mailing.id)
        messages = detail.query_one("#messages")
        await wait_for(pilot, lambda: messages.total == 12, what="every message")
        await pilot.press("slash")
        await type_text(pilot, "7900111")
        query = "SELECT id FROM message WHERE mailing_id = ? AND phone LIKE ? {} ORDER BY client_id, id"
        want = [r[0] for r in sql(env, query.format(""), mailing.id, "%7900111%")]
        await wait_for(pilot, lambda: [int(i) for i in column(messages, "id")] == want
                       and messages.total == len(want) == 4, what="by phone")
        await type_text(pilot, " failed")
        want = [r[0] for r in sql(env, query.format("AND status = 'failed'"), mailing.id, "%7900111%")]
        label = lambda: plain(detail.query_one("#messages-status"))  # noqa: E731
        await wait_for(pilot, lambda: [int(i) for i in column(messages, "id")] == want
                       and label().endswith(f" {len(want)} message(s)"), what="and failed, counted")
        assert label().startswith("status failed · phone containing 7900111")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.focused is messages, what="the table focused")
        await pilot.press("s")  # the next status, written into the filter
        await wait_for(pilot, lambda: detail.query_one("#message-filter").value == "7900111 expired"
                       and messages.total == 0, what="expired ones: none")
        await pilot.press("escape")  # clears the filter; the next would go back
        await wait_for(pilot, lambda: messages.total == 12, what="the filter cleared")
        assert isinstance(app.screen, MailingDetailScreen)
        await pilot.press("slash")
        await type_text(pilot, "vip")
        await wait_for(pilot, lambda: any("cannot read 'vip'" in n for n in notes(app)), what="refused")
        assert messages.total == 12


# -- ordering by a column ----------------------------------------------------------------------------------


async def test_clients_order_by_indexed_columns_at_any_size_and_by_zone_only_when_few(env):
    bulk_clients(env.path, 20_500, tag="bulk", tz="Europe/Moscow")
    bulk_clients(env.path, 600, start=30_000, tag="vip", tz="Asia/Tokyo")
    total = 21_100
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "2", ClientsScreen)
        table = screen.query_one("#clients-table")
        await wait_for(pilot, lambda: table.total == total and table.row_count == 100, what="page 1")
        assert header(table, "id") == "ID▼"  # the default order, newest first
        order = "SELECT id FROM client ORDER BY {} LIMIT 100"
        for key, want_header, by in (("o", "Phone▲", "phone"), ("O", "Phone▼", "phone DESC"),
                                     ("o", "Operator▲", "operator, id"), ("o", "Tags▲", "tag, id"),
                                     ("o", "ID▲", "id")):  # the zone skipped: 21,100 clients
            await pilot.press(key)
            want = [r[0] for r in sql(env, order.format(by))]
            await wait_for(pilot, lambda: [int(i) for i in column(table, "id")] == want,
                           what=f"ordered by {by}")
            assert header(table, table.source.order[0]) == want_header
            assert [header(table, k) for k in table.columns if k != table.source.order[0]] == [
                label for label, k in (("ID", "id"), ("Phone", "phone"), ("Operator", "operator"),
                                       ("Tags", "tag"), ("Time zone", "tz"), ("Stop list", "stop"),
                                       ("Name", "name"))
                if k != table.source.order[0]]
        await click_header(pilot, table, "tag")
        await wait_for(pilot, lambda: header(table, "tag") == "Tags▲", what="ordered by a click")
        await click_header(pilot, table, "tag")  # again: reversed
        want = [r[0] for r in sql(env, order.format("tag DESC, id DESC"))]
        await wait_for(pilot, lambda: header(table, "tag") == "Tags▼"
                       and [int(i) for i in column(table, "id")] == want, what="reversed by a click")
        await click_header(pilot, table, "tz")  # no index, and too many clients
        await wait_for(pilot, lambda: any("Time zone has no index" in n and "21,100" in n for n in notes(app)),
                       what="the refusal")
        assert header(table, "tag") == "Tags▼" and header(table, "tz") == "Time zone"
        # a filter narrows them: the zone orders them (the order is kept across filters)
        await pilot.press("slash")
        await type_text(pilot, "Tokyo")
        await wait_for(pilot, lambda: table.total == 600, what="the filter")
        await pilot.press("enter")
        await click_header(pilot, table, "tz")
        want = [r[0] for r in sql(env, "SELECT id FROM client WHERE tz LIKE '%Tokyo%' OR phone LIKE '%Tokyo%'"
                                       " OR tag LIKE '%Tokyo%' ORDER BY tz, id LIMIT 100")]
        await wait_for(pilot, lambda: header(table, "tz") == "Time zone▲"
                       and [int(i) for i in column(table, "id")] == want, what="ordered by zone")
        # the filter cleared: 21,100 clients cannot be ordered by zone, back to the default
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.total == total and header(table, "id") == "ID▼",
                       what="the default order")
        assert any("Back to the default order" in n for n in notes(app))
        want = [r[0] for r in sql(env, order.format("id DESC"))]
        await wait_for(pilot, lambda: [int(i) for i in column(table, "id")] == want, what="newest first")


async def test_mailings_and_a_mailings_messages_order_by_a_column(env, sim):
    for i in range(6):
        service.create_client(phone=f"790012345{i:02d}")
    service.create_client(phone="79005550000")  # refused: failed
    running = service.create_mailing(text="b running", start="now", end="+1h")
    send_in_process(sim)
    service.create_mailing(text="c later", start="+2d", end="+3d")
    service.create_mailing(text="a sooner", start="+1d", end="+3d")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "3", MailingsScreen)
        table = screen.query_one("#mailings-table")
        await wait_for(pilot, lambda: table.row_count == 3, what="the mailings")
        for keys, want_header, by in ((("o",), "State▲", "state, id"), (("O",), "State▼", "state DESC, id DESC"),
                                      (("o",), "Start▲", "start_at, id"), (("o",), "End▲", "end_at, id"),
                                      (("o", "O"), "Text▼", "text DESC, id DESC")):
            await pilot.press(*keys)
            want = [r[0] for r in sql(env, f"SELECT id FROM mailing ORDER BY {by}")]
            await wait_for(pilot, lambda: [int(i) for i in column(table, "id")] == want
                           and header(table, table.source.order[0]) == want_header, what=f"ordered by {by}")
        await put_cursor_on(pilot, table, running.id)
        detail = await open_screen(pilot, "enter", MailingDetailScreen)
        messages = detail.query_one("#messages")
        await wait_for(pilot, lambda: messages.total == 7, what="the messages")
        assert not any(header(messages, k).endswith(("▲", "▼")) for k in messages.columns)  # the client order
        order = "SELECT id FROM message WHERE mailing_id = ? ORDER BY {}"
        for keys, want_header, by in ((("o",), "#▲", "id"), (("o",), "Phone▲", "phone, id"),
                                      (("o",), "Status▲", "status, next_attempt_at, id"),
                                      (("O",), "Status▼", "status DESC, next_attempt_at DESC, id DESC"),
                                      (("o",), "Attempts▲", "attempts, id")):
            await pilot.press(*keys)
            want = [r[0] for r in sql(env, order.format(by), running.id)]
            await wait_for(pilot, lambda: [int(i) for i in column(messages, "id")] == want
                           and header(messages, messages.source.order[0]) == want_header, what=f"by {by}")
        await settle(pilot)
