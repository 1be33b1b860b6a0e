"""The live log: the send journal as it happens, from a real consumer process and in-process."""
import os
import subprocess
import sys
import time
from pathlib import Path

from textual.widgets import RichLog

import models
import service
import tasks
from console.app import MailerApp
from console.screens.log import LogScreen, parse_filter

from console_testkit import MARKUP, SIZE, plain, send_in_process, settle, type_text, wait_for

ROOT = Path(__file__).resolve().parents[2]


def log_lines(app):
    return [strip.text for strip in app.screen.query_one("#journal", RichLog).lines]


async def open_log(pilot):
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LogScreen), what="log screen")
    await wait_for(pilot, lambda: not pilot.app.screen.backfilling, what="backfill")
    return pilot.app.screen


async def test_live_log_shows_a_send_made_by_a_real_consumer(env, sim):
    consumer_env = dict(os.environ, MAILER_DB_URL=env.url, MAILER_QUEUE_URL=env.queue_url,
                        PROBE_URL=sim.url, PROBE_TOKEN="t", MAILER_TZ="Europe/Moscow")
    log_path = env.tmp / "consumer.log"
    consumer = None
    try:
        with open(log_path, "wb") as out:
            consumer = subprocess.Popen([sys.executable, "-m", "app", "consumer"], cwd=ROOT, env=consumer_env,
                                        stdout=out, stderr=subprocess.STDOUT)
        app = MailerApp()
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_log(pilot)
            client = service.create_client(phone="79001234567")
            mailing = service.create_mailing(text="hello from the test", start="now", end="+10m")
            message = models.Message.get(models.Message.mailing == mailing.id)
            wanted = f"message {message.id}"
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if any(wanted in line and " sent " in line for line in log_lines(app)):
                    break
                assert consumer.poll() is None, log_path.read_text()[-2000:]
                await pilot.pause(0.2)
            lines = [line for line in log_lines(app) if wanted in line]
            assert lines, f"no journal line for {wanted}; consumer log:\n{log_path.read_text()[-2000:]}"
            assert f"mailing {mailing.id}" in lines[0] and f"client {client.id}" in lines[0]
            assert " sent " in lines[0] and "http 200" in lines[0]
            assert models.Message.get_by_id(message.id).status == "sent"
            assert "1 line(s) shown" in plain(screen.query_one("#log-status"))
    finally:
        if consumer is not None:
            consumer.terminate()
            try:
                consumer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                consumer.kill()
                consumer.wait(timeout=5)


async def test_log_filter_pause_and_literal_errors(sim):
    service.create_client(phone="79001234567")
    service.create_client(phone="79005550000", tag="x")  # rejected by the simulator
    first = service.create_mailing(text="one", start="now", end="+1h")
    assert send_in_process(sim) == 2
    app = MailerApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot)
        lines = log_lines(app)
        assert len(lines) == 2 and any(" failed " in line and "HTTP 4" in line for line in lines)
        # pause: new sends are not shown until following again
        await pilot.press("space")
        assert "paused" in plain(screen.query_one("#log-status"))
        second = service.create_mailing(text=MARKUP, start="now", end="+1h", tag="x")
        assert send_in_process(sim) == 1
        ticks = screen.ticks
        await wait_for(pilot, lambda: screen.ticks >= ticks + 2, what="two polling ticks")  # would have shown it
        await settle(pilot)
        assert len(log_lines(app)) == 2
        await pilot.press("space")
        await wait_for(pilot, lambda: len(log_lines(app)) == 3, what="caught up")
        assert f"mailing {second.id}" in log_lines(app)[-1]  # newest at the bottom
        # filter by mailing
        await pilot.press("slash")
        await type_text(pilot, f"m {first.id}")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.flt == {"mailing": first.id} and not screen.backfilling)
        assert len(log_lines(app)) == 2 and all(f"mailing {first.id} " in l for l in log_lines(app))
        await pilot.press("slash")
        await type_text(pilot, "nonsense")
        await pilot.press("enter")
        assert screen.flt == {"mailing": first.id}  # refused with a warning, filter kept
        await pilot.press("escape", "escape")  # leave the input, then clear the filter
        await wait_for(pilot, lambda: len(log_lines(app)) == 3 and not screen.flt, what="unfiltered")
        assert app.is_running


def test_parse_filter():
    assert parse_filter("m 3 client=5 #17") == {"mailing": 3, "client": 5, "message": 17}
    assert parse_filter("mailing:2") == {"mailing": 2}
    assert parse_filter("") == {}
