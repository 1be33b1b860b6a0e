"""Issue 11, "also expected": `mailer console --read-only` refuses every change with a notice and writes
nothing; `x` exports the whole view (filter applied) as CSV and says where; `y` copies the selected
row as tab-separated text. Each test drives the keys and checks the screen, the database and the file."""
import csv
import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets._header import HeaderTitle

import models
import service
from console.app import MailerApp
from console.read_only import writing_actions
from console.screens.clients import ClientsScreen
from console.screens.log import LogScreen
from console.screens.mailing_detail import STATUS_FILTERS, MailingDetailScreen
from console.screens.mailings import MailingsScreen
from domain import export, settings, stats, validation

from console_testkit import SIZE, bulk_clients, plain, settle, type_text, wait_for
from test_app import palette
from console_testkit import open_screen
from test_operator_items import notes


def dump(path):
    """Every row of every table of the database file, as SQL (what "unchanged" is compared on)."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def query(path, sql, *params):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def since(app, seen):
    """The notifications raised since `seen` (a set of their identities) was taken."""
    return [n.message for n in app._notifications if n.identity not in seen]


def seen(app):
    return {n.identity for n in app._notifications}


async def refused(pilot, key, what, screen):
    """Press `key`: the read-only notice for `what` appears and no form or question opens."""
    app = pilot.app
    before = seen(app)
    await pilot.press(key)
    await wait_for(pilot, lambda: f"read-only: {what} is refused" in " ".join(since(app, before)),
                   what=f"the refusal of {what}")
    assert isinstance(app.screen, screen), app.screen


# -- read-only ---------------------------------------------------------------------------------------


async def test_read_only_refuses_every_change_and_the_database_is_unchanged(env):
    for n in range(3):
        service.create_client(phone=f"7900123456{n}", tag="vip")
    running = service.create_mailing(text="now", start="now", end="+1h")
    service.create_mailing(text="later", start="+1h", end="+2h")
    data = dump(env.path)
    app = MailerApp(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        assert "READ-ONLY" in plain(app.screen.query_one(HeaderTitle))
        await open_screen(pilot, "2", ClientsScreen)
        await wait_for(pilot, lambda: app.screen.table.row_count == 3, what="the clients")
        for key, what in (("a", "adding a client"), ("e", "editing a client"), ("d", "deleting a client"),
                          ("i", "importing clients"), ("s", "changing the stop list")):
            await refused(pilot, key, what, ClientsScreen)
        screen = await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 2, what="the mailings")
        for key, what in (("n", "creating a mailing"), ("e", "editing a mailing"), ("p", "pausing a mailing"),
                          ("r", "resuming a mailing"), ("c", "cancelling a mailing"), ("t", "sending a test"),
                          ("C", "cloning a mailing"), ("d", "deleting a mailing")):
            await refused(pilot, key, what, MailingsScreen)
        await pilot.press("j", "enter")  # the running one (newest first: the later one is on top)
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen), what="the detail")
        assert app.screen.mailing_id == running.id
        for key, what in (("e", "editing a mailing"), ("p", "pausing a mailing"), ("r", "resuming a mailing"),
                          ("c", "cancelling a mailing"), ("R", "resending the messages in doubt"),
                          ("t", "sending a test"), ("C", "cloning a mailing"), ("d", "deleting a mailing")):
            await refused(pilot, key, what, MailingDetailScreen)
        await pilot.press("escape")
        for command, what in (("new client", "adding a client"), ("new mailing", "creating a mailing"),
                              ("import clients", "importing clients"), ("load demo", "loading demo data")):
            before = seen(app)
            await palette(pilot, command)
            await wait_for(pilot, lambda: f"read-only: {what} is refused" in " ".join(since(app, before)),
                           what=f"the palette's refusal of {what}")
            assert not app.screen.is_modal
        await settle(pilot)
    assert dump(env.path) == data


def test_every_action_that_reaches_the_service_is_tagged_as_writing():
    """The tags the test above presses, read from the classes: a new writing action must be tagged
    (and pressed above) to pass."""
    assert writing_actions(ClientsScreen) == {"add": "adding a client", "edit": "editing a client",
                                              "delete": "deleting a client", "import": "importing clients",
                                              "stop_list": "changing the stop list"}
    assert set(writing_actions(MailingsScreen)) == {"new", "edit", "pause", "resume", "cancel", "test_send",
                                                    "clone", "delete"}
    assert set(writing_actions(MailingDetailScreen)) == {"edit", "pause", "resume", "cancel", "resend_in_doubt",
                                                         "test_send", "clone", "delete"}
    assert set(writing_actions(MailerApp)) == {"new_client", "new_mailing", "import_csv", "demo"}
    assert writing_actions(LogScreen) == {}


async def test_without_read_only_the_same_key_writes(env):
    """The tag refuses only in a read-only console: d deletes (after its question) as before."""
    service.create_client(phone="79001234567")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        assert "READ-ONLY" not in plain(app.screen.query_one(HeaderTitle))
        screen = await open_screen(pilot, "2", ClientsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 1, what="the client")
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: any("deleted" in n for n in notes(app)), what="the deletion")
    assert query(env.path, "SELECT count(*) FROM client") == [(0,)]


def test_a_read_only_database_refuses_writes_and_pending_migrations(env):
    """What `mailer console --read-only` opens: a connection that cannot write, behind the tags."""
    service.create_client(phone="79001234567")
    before = dump(env.path)
    env.database.close()
    models.open_database(env.url, read_only=True)
    with pytest.raises(models.pw.OperationalError, match="readonly"):
        service.create_client(phone="79001234568")
    assert stats.client_count() == 1
    models.db.close()
    assert dump(env.path) == before
    conn = sqlite3.connect(env.path)  # as if an older version had made it
    conn.execute("DELETE FROM schema_migration WHERE name LIKE '0004%'")
    conn.commit()
    conn.close()
    with pytest.raises(validation.ValidationError, match="not applied yet"):
        models.open_database(env.url, read_only=True)


def test_mailer_console_read_only_on_a_missing_database_creates_nothing(world):
    assert "--read-only" in world.mailer("console", "--help").stdout
    result = world.mailer("console", "--read-only", check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: database: there is none at")
    assert not world.db_path.exists()


# -- export ------------------------------------------------------------------------------------------


@pytest.fixture
def exports(env, monkeypatch):
    folder = env.tmp / "exports"
    monkeypatch.setenv("MAILER_EXPORT_DIR", str(folder))
    settings.reload()
    return folder


async def export_view(pilot):
    """Press x and wait for the notification; returns the exported file's rows (header first)."""
    app = pilot.app
    before = seen(app)
    await pilot.press("x")
    await wait_for(pilot, lambda: any(" exported to " in n for n in since(app, before)), timeout=30,
                   what="the export's notification")
    note = next(n for n in since(app, before) if " exported to " in n)
    path = Path(note.split(" exported to ", 1)[1])
    assert path.is_absolute() and path.exists()
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert int(note.split(" ", 1)[0].replace(",", "")) == len(rows) - 1
    return path, rows


async def test_clients_export_writes_the_whole_filtered_view_over_many_pages(env, exports):
    bulk_clients(env.path, 6_000, tag="north")
    bulk_clients(env.path, 11_000, start=6_000, tag="south")  # 3 read pages, 110 screen pages
    service.create_client(phone="79990000001", tag="=HYPERLINK(\"http://evil\")")  # a formula, and south-less
    (south,) = query(env.path, "SELECT phone FROM client WHERE tag = 'south' ORDER BY id LIMIT 1")[0]
    service.opt_out([south])  # its row says so
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "2", ClientsScreen)
        await wait_for(pilot, lambda: screen.table.total == 17_001, what="every client counted")
        path, rows = await export_view(pilot)  # no filter: every client
        assert len(rows) == 17_002 and rows[0] == ["ID", "Phone", "Operator", "Tags", "Time zone", "Stop list",
                                                  "Name"]
        assert rows[1][3] == "'=HYPERLINK(\"http://evil\")"  # newest first; shown as text, never run
        await pilot.press("slash")
        await type_text(pilot, "south")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.table.total == 11_000, what="the filter")
        filtered, rows = await export_view(pilot)
    assert filtered != path and filtered.parent == exports.resolve()
    assert re.fullmatch(r"clients-\d{8}-\d{6}(-\d+)?\.csv", filtered.name)
    expected = query(env.path, "SELECT id, phone, operator, tag, tz, CASE WHEN phone IN (SELECT phone "
                               "FROM opt_out) THEN 'opted out' ELSE '' END, name FROM client WHERE tag = 'south' "
                               "ORDER BY id DESC")
    assert sum(row[-2] == "opted out" for row in expected) == 1
    assert rows[1:] == [[str(v) for v in row] for row in expected]
    assert not list(exports.glob("*.part"))


def command_rows(env, *args):
    """The rows `mailer mailings export *args` prints, against this test's database."""
    result = subprocess.run([sys.executable, "-m", "app", "mailings", "export", *map(str, args)],
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, timeout=120,
                            env={**os.environ, "MAILER_DB_URL": env.url, "MAILER_TZ": "Europe/Moscow"})
    assert result.returncode == 0, result.stderr
    return list(csv.reader(io.StringIO(result.stdout.decode("utf-8"), newline="")))


async def test_a_mailings_messages_export_keeps_the_status_filter_and_is_the_commands(env, exports):
    bulk_clients(env.path, 12_000)
    mailing = service.create_mailing(text="hello", start="now", end="+1h")
    conn = sqlite3.connect(env.path)  # the outcomes a consumer would have written
    conn.execute("UPDATE message SET status = 'failed', attempts = 1, last_error = '-refused by ' || phone, "
                 "text = 'hello' WHERE mailing_id = ? AND id % 2 = 0", (mailing.id,))
    conn.execute("UPDATE message SET status = 'unknown', attempts = 1, last_error = 'read timeout' || "
                 "char(10) || 'after 10 s' WHERE mailing_id = ? AND id % 7 = 1 AND status = 'pending'",
                 (mailing.id,))
    # three whose clients were deleted since: no client id any more (listed first, as on screen)
    conn.execute("UPDATE message SET client_id = NULL WHERE mailing_id = ? AND id IN (2, 4, 6000)", (mailing.id,))
    conn.commit()
    conn.close()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: app.screen.table.row_count == 1, what="the mailing")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingDetailScreen), what="the detail")
        detail = app.screen
        await wait_for(pilot, lambda: detail.messages.total == 12_000, what="every message")
        _, all_rows = await export_view(pilot)
        for _ in STATUS_FILTERS:  # s cycles through them: any, pending, sent, failed, ...
            if detail.status_filter == "failed":
                break
            await pilot.press("s")
        await wait_for(pilot, lambda: detail.messages.total == 6_000, what="the failed messages")
        path, rows = await export_view(pilot)
    assert path.name.startswith(f"mailing-{mailing.id}-messages-failed-")
    assert rows[0] == ["Message id", "Phone", "Client id", "Status", "Attempts", "Created at (Europe/Moscow)",
                       "Sent at (Europe/Moscow)", "Next attempt (Europe/Moscow)", "Last error", "Text"]
    expected = query(env.path, "SELECT id, phone, ifnull(client_id, ''), 'failed', attempts, '', '', "
                               "char(39) || last_error, 'hello' FROM message "
                               "WHERE mailing_id = ? AND status = 'failed' ORDER BY client_id, id", mailing.id)
    assert [row[:5] + row[6:] for row in rows[1:]] == [[str(v) for v in row] for row in expected]
    assert {row[5][:4] for row in rows[1:]} == {str(mailing.created_at.year)}  # created, in Moscow
    assert [row[0] for row in rows[1:4]] == ["2", "4", "6000"]
    assert rows[1][8].startswith("'-refused by 79")
    # the same rows as `mailer mailings export`, whole and with the status filter: the same code
    assert command_rows(env, mailing.id, "--status", "failed") == rows
    assert command_rows(env, mailing.id) == all_rows and len(all_rows) == 12_001
    doubt = [row for row in all_rows if row[3] == "unknown"]
    assert doubt and all(row[8] == "read timeout after 10 s" for row in doubt)  # one line


def test_a_cell_that_a_spreadsheet_would_run_is_written_as_text():
    assert [export.cell(v) for v in ("=1+2", "+79001234567", "-x", "@SUM(A1)", "\t=1", "a=b", "", None)] == [
        "'=1+2", "'+79001234567", "'-x", "'@SUM(A1)", "'\t=1", "a=b", "", ""]
    assert [export.cell(v) for v in (-5, 0, 12.5, 79001234567)] == [-5, 0, 12.5, 79001234567]  # numbers stay
    assert export.tsv_line((1, "=a\tb", "two\r\nlines", None)) == "1\t=a b\ttwo lines\t"


async def test_the_log_and_mailings_export_their_whole_view(env, exports):
    one = service.create_mailing(text="one", start="+1h", end="+2h")
    two = service.create_mailing(text="two,\n\"quoted\"", start="+1h", end="+2h")
    service.create_client(phone="79001234567")
    conn = sqlite3.connect(env.path)
    conn.execute("INSERT INTO message (mailing_id, client_id, phone, status, created_at, attempts, last_error,"
                 " in_doubt) VALUES (?, 1, '79001234567', 'pending', '2026-01-01 00:00:00', 0, '', 0)", (one.id,))
    conn.executemany("INSERT INTO attempt (message_id, mailing_id, client_id, at, outcome, http_status, "
                     "latency_ms, error) VALUES (1, ?, 1, '2026-01-01 09:00:00', 'retry', 503, 12.5, ?)",
                     [(one.id if i % 3 else two.id, f"error {i}") for i in range(7_000)])
    conn.commit()
    conn.close()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_screen(pilot, "4", LogScreen)
        await wait_for(pilot, lambda: not app.screen.backfilling, what="the backfill")
        await pilot.press("slash")
        await type_text(pilot, f"m {one.id}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen.flt == {"mailing": one.id}, what="the filter")
        path, rows = await export_view(pilot)
        assert path.name.startswith(f"log-mailing-{one.id}-")
        expected = query(env.path, "SELECT id, '2026-01-01 12:00:00', message_id, mailing_id, client_id, "
                                   "outcome, http_status, latency_ms, error, '' FROM attempt "
                                   "WHERE mailing_id = ? ORDER BY id", one.id)
        assert len(expected) > 4_000  # more than the log keeps on screen (2,000)
        assert rows[1:] == [[str(v) for v in row] for row in expected]
        await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: app.screen.table.row_count == 2, what="the mailings")
        path, rows = await export_view(pilot)
    assert [row[:4] for row in rows[1:]] == [[str(two.id), "scheduled", "", "two,\n\"quoted\""],
                                             [str(one.id), "scheduled", "", "one"]]
    assert rows[1][9] == "1"  # the audience it would have now


# -- copy the row ------------------------------------------------------------------------------------


async def test_y_copies_the_selected_row_whole_as_tab_separated_text(env):
    first = service.create_client(phone="79001234567", tag="a [bold]tag[/]", tz="Asia/Tokyo")
    second = service.create_client(phone="79001234568", tag="b")
    mailing = service.create_mailing(text="a long text\nwith a second line that the table cuts short",
                                     start="+1h", end="+2h", tag="b")
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot, "2", ClientsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 2, what="the clients")
        await pilot.press("y")  # newest first: the second client
        await wait_for(pilot, lambda: app.clipboard, what="the clipboard")
        assert app.clipboard == f"{second.id}\t79001234568\t900\tb\tEurope/Moscow\t\t"  # not opted out, no name
        await pilot.press("j", "y")
        await wait_for(pilot, lambda: app.clipboard.startswith(str(first.id)), what="the other row")
        assert app.clipboard == f"{first.id}\t79001234567\t900\ta [bold]tag[/]\tAsia/Tokyo\t\t"  # not opted out, no name
        assert any("79001234567" in n for n in notes(app))
        screen = await open_screen(pilot, "3", MailingsScreen)
        await wait_for(pilot, lambda: screen.table.row_count == 1, what="the mailing")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.clipboard.startswith(str(mailing.id)), what="the mailing's row")
    cells = app.clipboard.split("\t")
    assert cells[:4] == [str(mailing.id), "scheduled", "", "a long text with a second line that the table cuts short"]
    assert cells[9] == "1"  # its audience: the client tagged b
