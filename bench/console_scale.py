"""The console with many mailings (run by hand, not in tests):

    .venv/bin/python bench/console_scale.py [--rebuild] [--idle 10]

Builds once, into a cached file under /tmp (reused by later runs; --rebuild makes it again):
1,000,000 clients and 100,000 mailings, of which 1,000 are running with 1,000 messages each
(1,000,000 messages: 60% sent, 10% failed, the rest pending, one journal row per settled message) and
the newest ~200 are scheduled with a few audience filters; the rest finished or cancelled. All of it
is set-based SQL (INSERT ... SELECT over recursive CTEs), into a schema made by models.open_database.

Then measures, headless (App.run_test), each figure with its goal and a comparison from the same run:
the dashboard's and the mailings screen's first paint (goal < 500 ms; against the clients screen's),
a key answered (`down` to the cursor moved, goal < 100 ms; `pagedown` to the next page shown), `q`
to the app stopped, the idle console's CPU over 10 s on each screen (goal < 5% of a core; against the
clients screen, which does not refresh), `mailer mailings list --limit 50` as a subprocess (goal <
300 ms; against `mailer --help`, the interpreter's start), and every statement the dashboard and a
mailings page run, with its time and SQLite's query plan (EXPLAIN QUERY PLAN).
"""
import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path("/tmp/mailer-console-scale-v1.db")
CLIENTS, MAILINGS, RUNNING_EVERY, AUDIENCE = 1_000_000, 100_000, 100, 1_000
SCHEDULED_FROM = MAILINGS - 200  # the newest mailings (but the running ones among them) are scheduled
SIZE = (140, 45)

CTE = "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "


def build(path):
    """The database, set-based; returns the seconds it took."""
    import models

    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    models.open_database(f"sqlite:///{tmp}").close()
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA synchronous = off")
    conn.execute("PRAGMA cache_size = -200000")
    with conn:
        conn.execute(CTE + """
            INSERT INTO client (phone, operator, tag, tz, created_at)
            SELECT printf('79%09d', i), CASE i % 2 WHEN 1 THEN '900' ELSE '916' END,
                   CASE i % 4 WHEN 0 THEN 'vip' WHEN 1 THEN 'new' WHEN 2 THEN 'regular' ELSE '' END,
                   CASE i % 3 WHEN 0 THEN 'Europe/Moscow' WHEN 1 THEN 'Asia/Novosibirsk'
                        ELSE 'Europe/London' END,
                   '2026-01-01 00:00:00'
            FROM seq""", (CLIENTS,))
        conn.execute("INSERT INTO client_tags (client_id, tag) SELECT id, tag FROM client WHERE tag <> '' ORDER BY id")  # the filters read client_tags (0012)
    print(f"  clients: {time.perf_counter() - started:.1f} s", flush=True)
    # Every RUNNING_EVERY-th mailing is running (started an hour ago, ends in ten years); the newest
    # others are scheduled in 2030 with one of four audience filters; the rest finished (or, one in
    # seven, cancelled), over the last 100,000 minutes.
    with conn:
        conn.execute((CTE + """
            INSERT INTO mailing (id, text, start_at, end_at, operator, tag, window_start, window_end,
                                 state, state_reason, started_at, created_at, updated_at)
            SELECT i, 'Mailing ' || i || ': spring sale, 20% off everything in store',
                   CASE WHEN i % :every = 0 THEN datetime('now', '-1 hour')
                        WHEN i > :sched THEN datetime('2030-01-01', '+' || (i - :sched) || ' hours')
                        ELSE datetime('now', '-' || (:n - i + 60) || ' minutes') END,
                   CASE WHEN i % :every = 0 THEN datetime('now', '+10 years')
                        WHEN i > :sched THEN datetime('2030-01-02', '+' || (i - :sched) || ' hours')
                        ELSE datetime('now', '-' || (:n - i) || ' minutes') END,
                   CASE WHEN i > :sched AND i % 4 IN (1, 3) THEN CASE i % 4 WHEN 1 THEN '900' ELSE '916' END END,
                   CASE WHEN i > :sched AND i % 4 IN (2, 3) THEN CASE i % 4 WHEN 2 THEN 'vip' ELSE 'new' END END,
                   CASE WHEN i % 5 = 0 THEN 540 END, CASE WHEN i % 5 = 0 THEN 1260 END,
                   CASE WHEN i % :every = 0 THEN 'running' WHEN i > :sched THEN 'scheduled'
                        WHEN i % 7 = 0 THEN 'cancelled' ELSE 'finished' END,
                   '',
                   CASE WHEN i % :every = 0 THEN datetime('now', '-1 hour')
                        WHEN i > :sched OR i % 7 = 0 THEN NULL
                        ELSE datetime('now', '-' || (:n - i + 60) || ' minutes') END,
                   datetime('now', '-' || (:n - i + 120) || ' minutes'),
                   datetime('now', '-' || (:n - i + 120) || ' minutes')
            FROM seq""").replace("?", ":n"), {"n": MAILINGS, "every": RUNNING_EVERY, "sched": SCHEDULED_FROM})
    print(f"  mailings: {time.perf_counter() - started:.1f} s", flush=True)
    with conn:
        conn.execute("""
            INSERT INTO message (mailing_id, client_id, phone, text, status, created_at, sent_at, attempts,
                                 last_error, next_attempt_at, in_doubt)
            SELECT m.id, c.id, c.phone, NULL,
                   CASE WHEN c.id % 10 < 6 THEN 'sent' WHEN c.id % 10 = 6 THEN 'failed' ELSE 'pending' END,
                   m.started_at,
                   CASE WHEN c.id % 10 < 6 THEN m.started_at END,
                   CASE WHEN c.id % 10 < 7 THEN 1 ELSE 0 END,
                   CASE WHEN c.id % 10 = 6 THEN 'HTTP 400: bad phone' ELSE '' END,
                   m.started_at, 0
            FROM mailing m JOIN client c ON c.id <= ?
            WHERE m.state = 'running' ORDER BY m.id, c.id""", (AUDIENCE,))
    print(f"  messages: {time.perf_counter() - started:.1f} s", flush=True)
    with conn:  # the journal: one row per settled message, spread over the hour before the build
        conn.execute("""
            INSERT INTO attempt (message_id, mailing_id, client_id, at, outcome, http_status, latency_ms,
                                 error, owner)
            SELECT id, mailing_id, client_id,
                   datetime('now', '-' || (3600 - (id % 3540)) || ' seconds'),
                   status, CASE status WHEN 'sent' THEN 200 ELSE 400 END, 12.5, last_error, 'bench'
            FROM message WHERE status IN ('sent', 'failed') ORDER BY 4""")
    print(f"  journal: {time.perf_counter() - started:.1f} s", flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    tmp.rename(path)
    return time.perf_counter() - started


async def until(pilot, predicate, timeout=60.0):
    deadline = time.perf_counter() + timeout
    while True:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001 - the screen is still composing
            pass
        if time.perf_counter() > deadline:
            raise TimeoutError("the console did not get there in time")
        await pilot.pause(0.002)


def cpu_seconds():
    return time.process_time()  # every thread of this process: the UI and the database workers


async def idle_cpu(pilot, seconds):
    await pilot.pause(1.0)
    cpu, wall = cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)  # the app runs on this loop: nothing but its own timers
    return (cpu_seconds() - cpu) / (time.perf_counter() - wall)


async def measure_console(idle):
    from console.app import MailerApp
    from console.screens.clients import ClientsScreen
    from console.screens.dashboard import DashboardScreen
    from console.screens.mailings import MailingsScreen

    figures = {}

    def table(app, screen_type, selector):
        screen = app.screen
        if not isinstance(screen, screen_type):
            return None
        found = screen.query(selector)
        return found.first() if found else None

    def dash_table(app):
        return table(app, DashboardScreen, "#live-mailings")

    def mailings_table(app):
        return table(app, MailingsScreen, "#mailings-table")

    def painted(t):
        return t is not None and t.row_count > 0 and "none" not in t.records

    # 1. the dashboard: app start -> its live mailings on screen, and the failures panel filled
    started = time.perf_counter()
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: painted(dash_table(app)))
        figures["dashboard first paint (app start -> live mailings)"] = time.perf_counter() - started
        await until(pilot, lambda: "failed in all" in str(app.screen.query_one("#failures").content)
                    and "…" not in str(app.screen.query_one("#failures").content))
        figures["  ... and the failures panel (the failed total)"] = time.perf_counter() - started
        title = str(app.screen.query_one("#live-title").content)
        figures["dashboard idle CPU (fraction of a core)"] = await idle_cpu(pilot, idle)
        t = dash_table(app)
        figures["dashboard: key `down` -> cursor moved (median of 10)"] = await keys_down(pilot, t)
        started = time.perf_counter()
        press = asyncio.create_task(pilot.press("3"))  # pilot.press returns once the app is idle:
        await until(pilot, lambda: painted(mailings_table(app)))  # the paint is seen while it waits
        figures["mailings first paint (key 3 on the dashboard -> page 1)"] = time.perf_counter() - started
        await press
        t = mailings_table(app)
        await until(pilot, lambda: t.total is not None)
        figures["  ... and the count ('page 1 of 2,000')"] = time.perf_counter() - started
        await pilot.pause(0.2)
        status = str(app.screen.query_one("#mailings-status").content)
        first_ids = [r.id for r in t.records.values()][:3]
        figures["mailings idle CPU (fraction of a core)"] = await idle_cpu(pilot, idle)
        figures["mailings: key `down` -> cursor moved (median of 10)"] = await keys_down(pilot, t)
        figures["mailings: `ctrl+pagedown` -> next page shown (median of 5)"] = await next_pages(pilot, t)
        started = time.perf_counter()
        await pilot.press("ctrl+end")
        await until(pilot, lambda: t.page == t.pages - 1 and t.row_count > 0)
        figures["mailings: ctrl+end -> last page (offset ~100,000)"] = time.perf_counter() - started
        # a console of its own quits at once (its consumer sends on)
        started = time.perf_counter()
        press = asyncio.create_task(pilot.press("q"))
        await until(pilot, lambda: not app.is_running, timeout=120)
        figures["mailings: key `q` -> the app stopped"] = time.perf_counter() - started
        await press

    # 1b. under `mailer run`, q asks first while a mailing runs (1,000 do), as quitting stops sending
    app = MailerApp(mode="mailings", owns_consumer=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: painted(mailings_table(app)))
        await pilot.pause(1.0)
        started = time.perf_counter()
        press = asyncio.create_task(pilot.press("q"))
        await until(pilot, lambda: app.screen.is_modal, timeout=120)
        figures["mailings under `mailer run`: key `q` -> the question"] = time.perf_counter() - started
        await press
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, timeout=120)

    # 2. the comparison: the clients screen (a million rows, paged, no timer), reached the same ways
    started = time.perf_counter()
    app = MailerApp(mode="clients")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: painted(table(app, ClientsScreen, "#clients-table")))
        figures["clients first paint (app start -> page 1), for comparison"] = time.perf_counter() - started
        figures["clients idle CPU, for comparison (no refresh)"] = await idle_cpu(pilot, idle)
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: painted(dash_table(app)))
        await pilot.pause(0.5)
        started = time.perf_counter()
        press = asyncio.create_task(pilot.press("2"))
        await until(pilot, lambda: painted(table(app, ClientsScreen, "#clients-table")))
        figures["clients first paint (key 2 on the dashboard), for comparison"] = time.perf_counter() - started
        await press
        t = table(app, ClientsScreen, "#clients-table")
        figures["clients: key `down` -> cursor moved, for comparison"] = await keys_down(pilot, t)
        figures["clients: `ctrl+pagedown` -> next page, for comparison (median of 5)"] = await next_pages(pilot, t)
    return figures, title, status, first_ids


async def next_pages(pilot, t, pages=5):
    """Median seconds from ctrl+pagedown to the next page shown, over `pages` pages."""
    samples = []
    for page in range(1, pages + 1):
        started = time.perf_counter()
        await pilot.press("ctrl+pagedown")
        await until(pilot, lambda: t.page == page and t.row_count > 0)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def keys_down(pilot, t, count=10):
    t.move_cursor(row=0)
    await pilot.pause(0.05)
    samples = []
    for _ in range(count):
        row = t.cursor_row
        started = time.perf_counter()
        await pilot.press("down")
        await until(pilot, lambda: t.cursor_row != row)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure_cli(url, repeat=5):
    mailer = str(Path(sys.executable).with_name("mailer"))
    env = {**os.environ, "MAILER_DB_URL": url}

    def run(*args):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            done = subprocess.run([mailer, *args], capture_output=True, text=True, env=env, timeout=120)
            times.append(time.perf_counter() - started)
            assert done.returncode == 0, done.stderr[-500:]
        return statistics.median(times), done.stdout

    listing, out = run("mailings", "list", "--limit", "50")
    baseline, _ = run("--help")
    return listing, baseline, out


def statements(fn):
    """The statements fn() runs on the database: [(sql, seconds, plan)]."""
    import models

    conn = models.db.obj.connection()
    seen = []
    conn.set_trace_callback(seen.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    result = []
    for sql in seen:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        started = time.perf_counter()
        conn.execute(sql).fetchall()
        took = time.perf_counter() - started
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        result.append((sql, took, plan))
    return result


def print_statements(title, rows):
    print(f"\n{title}")
    for sql, took, plan in rows:
        short = " ".join(sql.split())
        print(f"  {1000 * took:7.1f} ms  {short[:150]}{'…' if len(short) > 150 else ''}")
        for step in plan:
            print(f"             {step}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="build the cached database again")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU to measure")
    parser.add_argument("--db", type=Path, default=CACHE)
    args = parser.parse_args()
    os.environ.setdefault("MAILER_TZ", "Europe/Moscow")
    url = f"sqlite:///{args.db}"
    os.environ["MAILER_DB_URL"] = url
    os.environ["MAILER_QUEUE_URL"] = f"sqlite:///{args.db.with_suffix('.queue.db')}"
    import models
    import tasks
    from domain import stats

    if args.rebuild:
        args.db.unlink(missing_ok=True)
    if args.db.exists():
        print(f"database: {args.db} (cached; --rebuild to make it again)")
    else:
        print(f"building {args.db}: {CLIENTS:,} clients, {MAILINGS:,} mailings, "
              f"{MAILINGS // RUNNING_EVERY:,} running with {AUDIENCE:,} messages each")
        print(f"built in {build(args.db):.1f} s ({args.db.stat().st_size / 1e6:,.0f} MB)")
    models.open_database(url)
    tasks.use_queue(os.environ["MAILER_QUEUE_URL"])
    messages_by_status, mailings_by_state = stats.totals()
    print(f"  mailings by state: {mailings_by_state}; messages: {sum(messages_by_status.values()):,}")

    # What a refresh reads, statement by statement (warm), and what the old screen read every second.
    stats.dashboard()
    print_statements("the dashboard's statements (every second; the failed total every 15 s):",
                     statements(stats.dashboard))
    stats.mailing_page_rows(100, 0)
    print_statements("a mailings page's statements (page 1, 100 mailings; every second while it has a "
                     "live one):", statements(lambda: stats.mailing_page_rows(100, 0)))
    started = time.perf_counter()
    every = stats.all_mailings()
    old_read = time.perf_counter() - started
    started = time.perf_counter()
    page = stats.mailing_page_rows(100, 0, stats.AudienceCache())
    page_read = time.perf_counter() - started

    figures, title, status, first_ids = asyncio.run(measure_console(args.idle))
    listing, baseline, out = measure_cli(url)

    print(f"\ndashboard panel title: {title!r}")
    print(f"mailings status line: {status!r}; first rows: {first_ids}")
    print(f"`mailer mailings list --limit 50`, its last line: {out.strip().splitlines()[-1]!r}\n")
    goals = {"first paint": "goal < 500 ms", "key": "goal < 100 ms", "CPU": "goal < 5%"}
    for name, value in figures.items():
        goal = next((g for k, g in goals.items() if k in name and "comparison" not in name), "")
        if "CPU" in name:
            print(f"{name:<62} {100 * value:7.1f} %   {goal}")
        else:
            print(f"{name:<62} {1000 * value:7.0f} ms  {goal}")
    print(f"{'`mailer mailings list --limit 50` (median of 5)':<62} {1000 * listing:7.0f} ms  goal < 300 ms")
    print(f"{'  `mailer --help`, the interpreter start (median of 5)':<62} {1000 * baseline:7.0f} ms")
    print(f"{'a page of 100 mailings with counts and audiences (cold cache)':<62} {1000 * page_read:7.0f} ms"
          f"  ({len(page)} rows)")
    print(f"{'  every mailing with counts (what the old screen read each second)':<62} {1000 * old_read:7.0f} ms"
          f"  ({len(every):,} rows)")


if __name__ == "__main__":
    main()
