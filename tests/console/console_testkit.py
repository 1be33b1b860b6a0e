"""Helpers for the console tests (a module name of its own: tests/console is not a package, so
that it cannot shadow the `console` package under test)."""
import sqlite3
import time

SIZE = (140, 45)
MARKUP = "[bold]x[/bold] [/x] [@click=app.quit]boom[/]"


def bulk_clients(path, count, start=0, tag="bulk", tz="Europe/Moscow"):
    """Insert clients fast with raw executemany (for the big-table tests)."""
    conn = sqlite3.connect(path)
    try:
        rows = ((f"79{(start + i):09d}", "900", tag, tz, "2026-01-01 00:00:00") for i in range(count))
        conn.executemany("INSERT INTO client (phone, operator, tag, tz, created_at) VALUES (?,?,?,?,?)", rows)
        # their tags, as an import writes them (the filters read client_tags)
        conn.execute("INSERT OR IGNORE INTO client_tags (client_id, tag) SELECT id, tag FROM client WHERE tag <> ''")
        conn.commit()
    finally:
        conn.close()


async def type_text(pilot, text):
    """Type `text` key by key, as a person would (pilot maps ' ', '+', '[' ... to their keys)."""
    await pilot.press(*text)


async def wait_for(pilot, predicate, timeout=5.0, step=0.05, what="condition"):
    """Let the app run until predicate() is true (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        await pilot.pause(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def settle(pilot, timeout=5.0):
    """Until no database worker is pending or running, and the UI has handled what they delivered
    (bounded): for asserting that something did NOT happen, without guessing a sleep."""
    from textual.worker import WorkerState

    busy = (WorkerState.PENDING, WorkerState.RUNNING)
    await wait_for(pilot, lambda: not any(w.state in busy for w in pilot.app.workers), timeout,
                   what="workers to finish")
    await pilot.pause()


def plain(widget):
    """The text a Static/Label shows."""
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def help_rows(app):
    """The help screen's table as [(where, key, does)] of plain text."""
    table = app.screen.query_one("#help-table").content
    columns = [[cell.plain if hasattr(cell, "plain") else str(cell) for cell in column._cells]
               for column in table.columns]
    return list(zip(*columns))


def table_rows(table):
    return [[cell.plain if hasattr(cell, "plain") else str(cell) for cell in table.get_row_at(i)]
            for i in range(table.row_count)]


def send_in_process(sim, budget=3.0):
    """Let the engine's dispatcher send what is due now, through the simulator (no consumer)."""
    from engine import dispatcher
    from engine.gateways.probe import ProbeGateway

    return dispatcher.dispatch(ProbeGateway(sim.url, sim.token), budget=budget)


async def open_screen(pilot, key, screen):
    """Press `key` and wait until the app shows a `screen` (a class); -> that screen."""
    await pilot.press(key)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen), what=screen.__name__)
    return pilot.app.screen
