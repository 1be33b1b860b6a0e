"""The dashboard says what is wrong with what sends (issue 11, item 12): a gateway that stopped
answering, with its cause whole; under `mailer run`, a simulator or consumer that exited, and a
consumer still starting. Real parts: a consumer process, the gateway simulator as a process that is
SIGKILLed, a SQLite write lock held by another connection; judged on the screen and in the database."""
import datetime as dt
import signal
import socket
import sqlite3
import subprocess
import sys

from console.app import Child, MailerApp
from console.format import local_time
from domain import stats
from domain.times import utcnow
import service
from support import HOST, ROOT, free_port
from support import wait_for as wait_until

from console_testkit import SIZE, plain, wait_for

TOKEN = "sim-token-0123456789"  # long enough that scrubbing it touches no error text


def share_database(world, env):
    """The world's commands and consumers on the console test's database and queue."""
    world.use_database(env.url)
    world.db_path = env.path
    world.env["MAILER_QUEUE_URL"] = env.queue_url


def start_simulator_process(world):
    """`python -m simulator` as `mailer run` starts it (a process, so that it can be SIGKILLed), on a
    free port; returns (process, url, log path) once it accepts connections."""
    port = free_port()
    log = world.dir / "gateway-sim.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port), "--token", TOKEN],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    world.cleanups.append(lambda: (proc.poll() is None and proc.kill(), proc.wait(timeout=10)))

    def listening():
        assert proc.poll() is None, log.read_text()
        with socket.create_connection((HOST, port), timeout=1):
            return True

    wait_until(listening, timeout=20, errors=(OSError,), message="the simulator to listen")
    return proc, f"http://{HOST}:{port}/v1", log


def screen_lines(app):
    """The screen as its lines of text, as drawn."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def shown_in(app, widget):
    """The text drawn inside `widget`'s content area, its lines joined without white space (a wrapped
    line breaks where a space was): what an operator can read there, not what the widget holds."""
    region = widget.scrollable_content_region  # without its scrollbar
    lines = screen_lines(app)[region.y:region.bottom]
    return "".join("".join(line[region.x:region.right].split()) for line in lines)


def heartbeat(world, pid):
    rows = world.query("SELECT gateway_ok_at, gateway_failing_since, gateway_error, beat_at FROM heartbeat "
                       "WHERE pid = ?", pid)
    return rows[0] if rows else None


def naive(text):
    """A naive-UTC time as SQLite stores it."""
    return dt.datetime.fromisoformat(text) if text else None


async def test_a_killed_simulator_and_a_gateway_that_stopped_answering_are_said_with_their_cause(env, world):
    share_database(world, env)
    sim, url, sim_log = start_simulator_process(world)
    world.env.update(PROBE_URL=url, PROBE_TOKEN=TOKEN)
    consumer = world.start_consumer()
    consumer_log = world.dir / "consumer-0.log"
    app = MailerApp(owns_consumer=True, children=[Child("simulator", sim, str(sim_log)),
                                                  Child("consumer", consumer, str(consumer_log))])
    async with app.run_test(size=SIZE) as pilot:
        panel = app.screen.query_one("#consumer")
        service.create_client(phone="79001234567")
        first = service.create_mailing(text="while it answers", start="now", end="+10m")
        await wait_for(pilot, lambda: "gateway answering: last answer" in plain(panel), timeout=20,
                       what="the gateway answering")
        assert world.statuses(first.id) == {"sent": 1}
        ok_at, failing_since, _, _ = heartbeat(world, consumer.pid)
        assert ok_at is not None and failing_since is None
        assert f"last answer {local_time(naive(ok_at), fmt='%H:%M:%S')}" in plain(panel)

        sim.send_signal(signal.SIGKILL)
        gone = f"the local simulator exited (code -9: killed by SIGKILL); see {sim_log}"
        await wait_for(pilot, lambda: gone in plain(panel), timeout=10, what="the simulator's exit")
        # Nothing was tried since: the gateway is not said to be dead without evidence.
        assert "not answering" not in plain(panel) and "gateway answering: last answer" in plain(panel)

        service.create_client(phone="79001234568")
        second = service.create_mailing(text="after it died", start="now", end="+10m")
        await wait_for(pilot, lambda: "gateway not answering since" in plain(panel), timeout=20,
                       what="the gateway not answering")
        _, failing_since, cause, _ = heartbeat(world, consumer.pid)
        assert failing_since is not None and "Connection refused" in cause
        since = local_time(naive(failing_since), fmt="%H:%M:%S")
        text = plain(panel)
        assert f"✖ gateway not answering since {since}" in text and cause in text
        assert gone in text  # what is wrong comes first
        assert text.index(gone) < text.index("consumer(s) alive")
        # Its messages (both clients) say the same: retried, with the same cause.
        assert set(world.query("SELECT status, last_error FROM message WHERE mailing_id = ?",
                               second.id)) == {("pending", cause)}
        # Drawn whole, wrapped inside the panel: nothing of the cause is cut.
        assert "".join(cause.split()) in shown_in(app, app.screen.query_one("#consumer-panel"))
        red = [span for span in panel.content.spans if "red" in str(span.style)]
        assert any(panel.content.plain[s.start:s.end] == cause for s in red)


async def test_the_consumer_mailer_run_started_is_starting_until_it_beats_and_gone_when_it_exits(env, world):
    share_database(world, env)
    log = world.dir / "consumer-0.log"
    # Another connection holds the write lock: the consumer's first heartbeat waits for it, so
    # "starting" lasts until the test lets it go (the console still reads: WAL).
    lock = sqlite3.connect(env.path, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")
    try:
        with open(log, "w") as out:
            proc = subprocess.Popen(world.consumer_command(), env=world.env, cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT)
        world.consumers.append(proc)  # SIGKILLed at the end whatever happens
        app = MailerApp(owns_consumer=True, children=[Child("consumer", proc, str(log))])
        async with app.run_test(size=SIZE) as pilot:
            panel = app.screen.query_one("#consumer")
            await wait_for(pilot, lambda: "consumer starting…" in plain(panel), what="starting")
            assert f"pid {proc.pid}" in plain(panel) and "no consumer alive" not in plain(panel)
            assert proc.poll() is None and world.query("SELECT count(*) FROM heartbeat") == [(0,)]

            lock.execute("COMMIT")
            await wait_for(pilot, lambda: "1 consumer(s) alive" in plain(panel), timeout=20,
                           what="the first beat")
            assert f"pid {proc.pid}" in plain(panel) and "starting" not in plain(panel)
            assert world.query("SELECT pid FROM heartbeat") == [(proc.pid,)]

            proc.send_signal(signal.SIGKILL)
            await wait_for(pilot, lambda: "no consumer alive" in plain(panel), timeout=10, what="its exit")
            assert (f"the consumer `mailer run` started exited (code -9: killed by SIGKILL); see {log}"
                    in plain(panel))
            # Its heartbeat is still fresh in the database: the console went by the child's exit,
            # not by the heartbeat going stale 15 s later.
            beat_at = naive(heartbeat(world, proc.pid)[3])
            assert utcnow() - beat_at < stats.HEARTBEAT_STALE
    finally:
        lock.close()
