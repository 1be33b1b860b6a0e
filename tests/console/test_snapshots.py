"""Snapshots of the main screens with fixed data (no "now" anywhere on screen).

Regenerate after an intended change with: pytest tests/console/test_snapshots.py --snapshot-update
"""
import pytest
from textual.widgets import Input, TextArea

import tasks
from console.app import MailerApp
from console.screens.mailing_editor import MailingEditor

from console_testkit import MARKUP, SIZE, settle as workers_done, wait_for
import service


@pytest.fixture
def data():
    for i, (tag, tz) in enumerate([("vip", "Europe/Moscow"), ("new", "Asia/Novosibirsk"),
                                   ("", "Europe/London"), (MARKUP, "Europe/Kaliningrad")]):
        service.create_client(phone=f"7900{i}000000", tag=tag, tz=tz)
        service.create_client(phone=f"7916{i}000000", operator="916", tag=tag, tz=tz)
    service.create_mailing(text="New year sale [50%] for VIPs", start="2030-01-01T09:00",
                         end="2030-01-02T09:00", tag="vip", window="10:00-20:00")
    service.create_mailing(text=MARKUP, start="2030-02-01T09:00", end="2030-02-01T21:00", operator="916")
    cancelled = service.create_mailing(text="never sent", start="2030-03-01T09:00", end="2030-03-02T09:00")
    service.set_mailing_state(cancelled.id, "cancel")


def freeze_cursors(app):
    for widget in app.screen.query("Input, TextArea"):
        widget.cursor_blink = False


async def settle(pilot, ready):
    await wait_for(pilot, ready, what="screen data")
    freeze_cursors(pilot.app)
    await workers_done(pilot)


def test_dashboard_snapshot(data, snap_compare):
    async def run_before(pilot):
        await settle(pilot, lambda: pilot.app.screen.query_one("#live-mailings").row_count == 2)

    assert snap_compare(MailerApp(), terminal_size=SIZE, run_before=run_before)


def test_clients_snapshot(data, snap_compare):
    async def run_before(pilot):
        await pilot.press("2")
        await settle(pilot, lambda: pilot.app.screen.query_one("#clients-table").row_count == 8)

    assert snap_compare(MailerApp(), terminal_size=SIZE, run_before=run_before)


def test_mailings_snapshot(data, snap_compare):
    async def run_before(pilot):
        await pilot.press("3")
        await settle(pilot, lambda: pilot.app.screen.query_one("#mailings-table").row_count == 3)

    assert snap_compare(MailerApp(), terminal_size=SIZE, run_before=run_before)


def test_editor_snapshot(data, snap_compare):
    async def run_before(pilot):
        app = pilot.app
        await pilot.press("3")
        await settle(pilot, lambda: app.screen.query_one("#mailings-table").row_count == 3)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, MailingEditor))
        editor = app.screen
        editor.query_one("#text", TextArea).load_text("Spring [sale] for everyone on 916")
        editor.query_one("#start", Input).value = "2030-04-01T09:00"
        editor.query_one("#end", Input).value = "2030-04-01T21:00+03:00"
        editor.query_one("#operator", Input).value = "916"
        editor.query_one("#window", Input).value = "9:00-25:00"
        await settle(pilot, lambda: "4 client(s) match" in str(editor.query_one("#audience").content))
        # The editor focuses its text a moment after it opens, and a text area draws its cursor only
        # when repainted after that: the picture must not depend on which came first.
        text = editor.query_one("#text", TextArea)
        text.focus()
        # A text area caches its lines without its focus in the key (Textual 8.2): a line painted
        # before the focus came is shown again without the cursor. Paint them anew.
        text._line_cache.clear()
        text.refresh()
        await pilot.pause()

    assert snap_compare(MailerApp(), terminal_size=SIZE, run_before=run_before)
