"""Console figures with 1,000,000 clients (run by hand, not in tests):

    .venv/bin/python bench/console_bench.py [--clients N] [--no-tmux]

Prints: the time to insert the clients (raw sqlite3 executemany into a DB made by
models.open_database), the time to first paint of the clients screen (headless, from app start and
from pressing 2 on the dashboard; and in a real terminal under tmux if it is installed), the time
of a page down, of moving past the last row, of jumping to the last page and of a filter, and the
process's peak RSS.
"""
import argparse
import asyncio
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def make_db(tmp, count):
    import models

    url = f"sqlite:///{tmp}/bench.db"
    models.open_database(url).close()
    started = time.perf_counter()
    conn = sqlite3.connect(f"{tmp}/bench.db")
    tags, zones = ("vip", "new", "regular", ""), ("Europe/Moscow", "Asia/Novosibirsk", "Europe/London")
    rows = ((f"79{i:09d}", "900" if i % 2 else "916", tags[i % 4], zones[i % 3], "2026-01-01 00:00:00")
            for i in range(count))
    conn.executemany("INSERT INTO client (phone, operator, tag, tz, created_at) VALUES (?,?,?,?,?)", rows)
    conn.execute("INSERT INTO client_tags (client_id, tag) SELECT id, tag FROM client WHERE tag <> '' ORDER BY id")  # the filters read client_tags (0012)
    conn.commit()
    conn.close()
    return url, time.perf_counter() - started


async def until(pilot, predicate, timeout=60.0):
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the console did not get there in time")
        await pilot.pause(0.002)


async def measure_headless(count):
    from console.app import MailerApp
    from console.screens.clients import ClientsScreen
    from console.widgets import PagedTable

    figures = {}

    def table_of(app):
        return app.screen.query_one(PagedTable) if isinstance(app.screen, ClientsScreen) else None

    def shown(app, page=0):
        table = table_of(app)
        return table is not None and table.page == page and table.row_count > 0

    def counted(app):
        return shown(app) and table_of(app).total is not None

    # 1. straight into the clients screen
    started = time.perf_counter()
    app = MailerApp(mode="clients")
    async with app.run_test(size=(140, 45)) as pilot:
        await until(pilot, lambda: shown(app))
        figures["first paint, app start -> clients page 1 (headless)"] = time.perf_counter() - started
        await until(pilot, lambda: counted(app))
        figures["  ... and the count ('page 1 of 10,000') shown"] = time.perf_counter() - started
        assert table_of(app).row_count == 100 and table_of(app).total == count

    # 2. from the dashboard by pressing 2, then paging
    app = MailerApp()
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause(0.3)
        started = time.perf_counter()
        await pilot.press("2")
        await until(pilot, lambda: shown(app))
        figures["first paint, key 2 on the dashboard -> clients page 1"] = time.perf_counter() - started
        await until(pilot, lambda: counted(app))
        figures["  ... and the count shown"] = time.perf_counter() - started
        table = table_of(app)
        samples = []
        for page in range(1, 11):
            started = time.perf_counter()
            await pilot.press("ctrl+pagedown")
            await until(pilot, lambda: table.page == page)
            samples.append(time.perf_counter() - started)
        figures["page down via pilot.press (median of 10)"] = statistics.median(samples)
        figures["page down via pilot.press (max of 10)"] = max(samples)
        samples = []
        for page in range(11, 21):  # the action alone, without the pilot's wait-for-idle per key
            started = time.perf_counter()
            table.action_next_page()
            await until(pilot, lambda: table.page == page)
            samples.append(time.perf_counter() - started)
        figures["page down action -> new page in the table (median of 10)"] = statistics.median(samples)
        table.move_cursor(row=table.row_count - 1)
        await pilot.pause(0.05)
        started = time.perf_counter()
        await pilot.press("down")
        await until(pilot, lambda: table.page == 21)
        figures["cursor down past the last row -> next page"] = time.perf_counter() - started
        started = time.perf_counter()
        await pilot.press("ctrl+end")
        await until(pilot, lambda: table.page == table.pages - 1 and table.row_count > 0)
        figures["ctrl+end: last page (offset ~1M)"] = time.perf_counter() - started
        started = time.perf_counter()
        await pilot.press("slash", *"vip", "enter")
        await until(pilot, lambda: table.source.search == "vip" and table.page == 0 and table.total < count)
        figures["filter 'vip' (LIKE scan + count) incl. typing"] = time.perf_counter() - started
    return figures


async def measure_detail(mailing_id):
    """First paint of a running mailing's detail (its 1M messages paged) and a page down there."""
    from console.app import MailerApp
    from console.screens.mailing_detail import MailingDetailScreen
    from console.widgets import PagedTable

    figures = {}
    app = MailerApp()
    async with app.run_test(size=(140, 45)) as pilot:
        await pilot.pause(0.3)
        started = time.perf_counter()
        app.push_screen(MailingDetailScreen(mailing_id))

        def table():
            screen = app.screen
            if not isinstance(screen, MailingDetailScreen):
                return None
            found = screen.query("#messages")  # empty until the screen has composed
            return found.first(PagedTable) if found else None

        await until(pilot, lambda: table() is not None and table().row_count > 0)
        figures["mailing detail: first paint of its messages (goal < 500)"] = time.perf_counter() - started
        samples = []
        for page in range(1, 6):
            started = time.perf_counter()
            table().action_next_page()
            await until(pilot, lambda: table().page == page and table().row_count > 0)
            samples.append(time.perf_counter() - started)
        figures["mailing detail: page down, median of 5 (goal < 100)"] = statistics.median(samples)
    return figures


def measure_tmux(url, count, tmp):
    """First paint in a real terminal: from launching `mailer console` to the clients page on screen
    (the console starts on the dashboard; '2' is sent as soon as the dashboard shows)."""
    if shutil.which("tmux") is None:
        return {}
    mailer = Path(sys.executable).with_name("mailer")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
    socket = f"console-bench-{os.getpid()}"
    command = (f"env -u COLUMNS -u LINES MAILER_DB_URL={url} MAILER_QUEUE_URL=sqlite:///{tmp}/q.db "
               f"MAILER_TZ=Europe/Moscow {mailer} console")

    def tmux(*args):
        return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, env=env,
                              timeout=10)

    def wait(text, timeout=30):
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if text in tmux("capture-pane", "-p", "-t", "b").stdout:
                return time.perf_counter()
            time.sleep(0.01)
        raise TimeoutError(text)

    figures = {}
    try:
        started = time.perf_counter()
        tmux("new-session", "-d", "-s", "b", "-x", "140", "-y", "45", command)
        dash = wait("Mailer — Dashboard")
        figures["tmux: launch -> dashboard painted"] = dash - started
        pressed = time.perf_counter()
        tmux("send-keys", "-t", "b", "2")
        painted = wait(f"page 1 of {-(-count // 100):,}")
        figures["tmux: key 2 -> clients page 1 painted"] = painted - pressed
        figures["tmux: launch -> clients page 1 painted"] = painted - started
        pressed = time.perf_counter()
        tmux("send-keys", "-t", "b", "NPage")
        figures["tmux: page down painted"] = wait(f"page 2 of {-(-count // 100):,}") - pressed
        pid = tmux("display-message", "-p", "-t", "b", "#{pane_pid}").stdout.strip()
        try:  # `env` execs the console, so the pane's pid is the console's
            status = Path(f"/proc/{pid}/status").read_text()
            figures["tmux: console process peak RSS (VmHWM), MB"] = next(
                int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM"))
        except (OSError, StopIteration, ValueError):
            pass
    finally:
        tmux("kill-server")
    return figures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--no-tmux", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MAILER_TZ", "Europe/Moscow")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MAILER_DB_URL"] = f"sqlite:///{tmp}/bench.db"
        import models
        import service
        import tasks
        from domain import clients

        url, insert_s = make_db(tmp, args.clients)
        models.open_database(url)
        tasks.use_queue(f"sqlite:///{tmp}/q.db")
        print(f"clients: {args.clients:,}; inserted with raw executemany in {insert_s:.2f} s")
        started = time.perf_counter()
        total = clients.client_query("").order_by().count()
        print(f"  (a bare count of the clients takes {1000 * (time.perf_counter() - started):.0f} ms: {total:,})")
        rss_before = rss_mb()
        started = time.perf_counter()
        mailing = service.create_mailing(text="bench", start="now", end="+1d")  # running, 1M messages
        print(f"a running mailing over them: {time.perf_counter() - started:.2f} s to create")
        figures = asyncio.run(measure_headless(args.clients))
        figures.update(asyncio.run(measure_detail(mailing.id)))
        for name, seconds in figures.items():
            print(f"{name:<58} {1000 * seconds:8.0f} ms")
        print(f"{'peak RSS of this process (ru_maxrss)':<58} {rss_mb():8.0f} MB "
              f"(before the console: {rss_before:.0f} MB; goal < 300 MB)")
        print("goals: first paint < 500 ms, page down < 100 ms, peak memory < 300 MB")
        if not args.no_tmux:
            for name, value in measure_tmux(url, args.clients, tmp).items():
                if name.endswith("MB"):
                    print(f"{name[:-4]:<58} {value:8.0f} MB")
                else:
                    print(f"{name:<58} {1000 * value:8.0f} ms")


if __name__ == "__main__":
    main()
