"""The chaos suite: a real consumer against the simulator's fault modes, killed and restarted on purpose.

Guarantees checked from the simulator's own log of accepted msgIds and from the database:
1. nothing accepted at or after a mailing's end;  2. at most one acceptance per message;
3. every message final by the end, counts adding up to the audience;  4. faults are survived with
backoff, a 401 pauses sending, a failing mailing pauses itself;  5. SIGKILLs and two consumers at once
change none of this.   Run alone with `pytest -m chaos`.
"""
import base64
import json
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support import phones, wait_for
from simulator import read_log
from test_engine import assert_once_each, final, parse_utc

pytestmark = pytest.mark.chaos


def check_guarantees(world, sim_logs, mailing, total):
    """Guarantees 1-3 and the sent/accepted bookkeeping; returns the figures."""
    end = parse_utc(mailing["end"]).timestamp()
    log = [e for path in sim_logs for e in read_log(path)]
    late = [e for e in log if e["received_at"] >= end]
    assert not late, f"{len(late)} accepted at or after the end"
    assert_once_each(log)
    counts = world.statuses(mailing["id"])
    assert sum(counts.values()) == total and not counts.get("pending"), counts
    sent = {r[0] for r in world.query("SELECT id FROM message WHERE status = 'sent' AND mailing_id = ?",
                                      mailing["id"])}
    unknown = {r[0] for r in world.query("SELECT id FROM message WHERE status = 'unknown'")}
    accepted = {e["id"] for e in log}
    assert sent <= accepted, "recorded as sent but never accepted"
    assert accepted <= sent | unknown, "accepted but recorded as neither sent nor unknown"
    return {"accepted": len(accepted), "duplicates": len(log) - len(accepted), "counts": counts,
            "unknown_not_accepted": len(unknown - accepted)}


def test_mixed_faults_and_repeated_kills_keep_every_guarantee(world, simulator, running_mailing):
    rng = random.Random(20261122)
    sim = simulator(latency=(0, 20), error_rate=0.1, garbage_rate=0.1, throttle_rate=0.05, retry_after=1,
                    timeout_rate=0.02, hang=3, seed=11)
    world.use_gateway(sim)
    world.env["MAILER_READ_TIMEOUT"] = "1"
    total = 2000
    mailing, _ = running_mailing(total, end="+25s", text="chaos")
    kills = 0
    for _ in range(3):
        time.sleep(rng.uniform(1.5, 4.0))
        world.stop(world.consumers[-1], signal.SIGKILL)
        kills += 1
        world.start_consumer()
    end = parse_utc(mailing["end"]).timestamp()
    wait_for(final(world, mailing["id"], total), timeout=max(5, end - time.time()) + 30,
             message="every message final")
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    stats = sim.stats()
    print(f"\nchaos: kills={kills} faults={stats['faults']} figures={figures}")
    assert figures["duplicates"] == 0
    assert figures["counts"].get("sent", 0) > total // 2
    # Every message left unknown is in doubt for a reason: a kill leaves at most what was on the wire
    # (two dispatchers of 32); the rest had an answer that never came whole (hangs, garbage 200s).
    reasons = [e for (e,) in world.query("SELECT last_error FROM message WHERE status = 'unknown'")]
    assert all(e.startswith("in doubt: ") for e in reasons), reasons[:3]
    killed = [e for e in reasons if "the consumer stopped" in e]
    assert len(killed) <= kills * 64, len(killed)


def test_two_consumers_at_once_never_send_a_message_twice(world, simulator):
    sim = simulator(latency=(2, 10))
    world.use_gateway(sim)
    total = 4000
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
    world.start_consumer()
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "twins", "--start", "now", "--end", "+2m")
    wait_for(lambda: len(read_log(sim.log_path)) >= total // 3, timeout=30, message="a third delivered")
    world.stop(world.consumers[0], signal.SIGKILL)  # the survivor takes over the dead one's claims
    wait_for(lambda: not world.statuses(mailing["id"]).get("pending"), timeout=60, message="none pending")
    log = read_log(sim.log_path)
    assert_once_each(log)
    counts = world.statuses(mailing["id"])
    assert set(counts) <= {"sent", "unknown"} and sum(counts.values()) == total
    assert counts["sent"] >= total - 64


def test_outage_survived_with_backoff_not_a_retry_storm(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    world.env.update(MAILER_RETRY_BASE="0.5", MAILER_RETRY_CAP="4")
    total = 200
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
    world.start_consumer()
    sim.begin_outage(12)
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+2m")
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == total, timeout=60, message="all sent")
    assert_once_each(read_log(sim.log_path))
    per_message = [a for (a,) in world.query("SELECT attempts FROM message")]
    # 12 s of outage with backoff 0.5, 1, 2, 4, 4 ... s (jittered to half) is at most ~10 tries each.
    assert max(per_message) <= 12, max(per_message)
    assert sim.stats()["faults"]["outage"] <= total * 12


def test_retry_after_is_honoured(world, simulator, running_mailing):
    sim = simulator(throttle_rate=0.5, retry_after=2, seed=5)
    world.use_gateway(sim)
    # 20 messages: about half are throttled at each try, so the last goes through after ~5 tries.
    mailing, _ = running_mailing(20)
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == 20, timeout=60, message="all sent")
    rows = world.query("SELECT message_id, at, http_status FROM attempt ORDER BY message_id, id")
    gaps = []
    for (mid, at, status), (mid2, at2, _) in zip(rows, rows[1:]):
        if mid == mid2 and status == 429:
            gaps.append((parse_utc(at2) - parse_utc(at)).total_seconds())
    assert gaps and min(gaps) >= 1.95, gaps


def expired_jwt():
    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64({'exp': int(time.time()) - 60, 'sub': 'x'})}.c2ln"


def test_an_expired_token_pauses_sending_instead_of_burning_retries(world, simulator, running_mailing):
    token = expired_jwt()
    sim = simulator(token=token)
    world.use_gateway(sim)
    total = 500
    mailing, _ = running_mailing(total, end="+5m")
    wait_for(lambda: world.query("SELECT paused_until, reason FROM gateway_status"), message="the pause")
    # The witness that the consumer went on running through the pause (and sent nothing): three
    # heartbeats after it (one every 2 s), its dispatcher woken every second meanwhile.
    beats = world.query("SELECT seq FROM heartbeat")[0][0]
    wait_for(lambda: world.query("SELECT seq FROM heartbeat")[0][0] >= beats + 3, message="three heartbeats")
    refused = world.query("SELECT count(*) FROM attempt WHERE http_status = 401")[0][0]
    assert 0 < refused <= 2 * 32, refused
    reason = world.query("SELECT reason FROM gateway_status")[0][0]
    assert "refused the token" in reason and token not in reason
    assert world.statuses(mailing["id"]).get("pending") == total
    # The operator fixes the token and restarts the consumer: everything goes, once.
    good = simulator(token="fresh-token")
    world.stop(world.consumers[-1])
    world.use_gateway(good)
    world.start_consumer()
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == total, timeout=60, message="all sent")
    assert_once_each(read_log(good.log_path))


def test_a_failing_mailing_pauses_itself_with_the_reason(world, simulator):
    blocked = phones(60, start=1000)
    sim = simulator(reject_phones=blocked)
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in blocked + phones(40)])
    world.start_consumer(MAILER_CONCURRENCY="2", MAILER_DISPATCHERS="1")
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+5m")
    wait_for(lambda: world.mailer_json("stats", mailing["id"])["state"] == "paused", message="auto-pause")
    stats = world.mailer_json("stats", mailing["id"])
    assert stats["reason"].startswith("paused automatically") and "number blocked" in stats["reason"]
    assert stats["failed"] >= 20 and stats["pending"] > 0


class EchoHandler(BaseHTTPRequestHandler):
    """A gateway that answers 500 with the request's Authorization header in the body (the first
    `cut` characters of it, when set)."""
    cut = None

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = f"internal error; you sent {self.headers['Authorization'][:self.cut]}".encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_token_never_reaches_database_logs_or_output(world, simulator):
    secret = "s3cr3t-" + "z" * 40
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        world.env.update(PROBE_URL=f"http://127.0.0.1:{server.server_address[1]}/v1", PROBE_TOKEN=secret)
        world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(5)])
        world.start_consumer()
        mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+3s")
        wait_for(final(world, mailing["id"], 5), timeout=20, message="all expired")
    finally:
        server.shutdown()
    errors = [e for (e,) in world.query("SELECT error FROM attempt")]
    assert errors and all("you sent Bearer [token]" in e for e in errors if "internal error" in e)
    outputs = [world.mailer("mailings", "show", mailing["id"], "--json").stdout,
               world.mailer("health", check=False).stdout, world.consumer_logs()]
    files = [p.read_bytes() for p in world.dir.iterdir() if p.is_file()]
    for blob in outputs + files:
        assert (secret.encode() if isinstance(blob, bytes) else secret) not in blob


def test_a_locked_database_is_a_clear_error(world):
    world.mailer("clients", "add", "--phone", "79000000001")
    holder = sqlite3.connect(world.db_path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        world.env["MAILER_DB_TIMEOUT"] = "1"
        result = world.mailer("clients", "add", "--phone", "79000000002", check=False)
    finally:
        holder.rollback()
        holder.close()
    assert result.returncode == 3, result
    assert "database is locked" in result.stderr and "Traceback" not in result.stderr
    assert world.query("SELECT count(*) FROM client") == [(1,)]


def test_statuses_add_up(world, simulator, running_mailing):
    """Guarantee 3 under a mixed fault load without kills, counted per status."""
    sim = simulator(error_rate=0.3, garbage_rate=0.2, seed=2)
    world.use_gateway(sim)
    mailing, _ = running_mailing(300, end="+6s")
    wait_for(final(world, mailing["id"], 300), timeout=30, message="all final")
    figures = check_guarantees(world, [sim.log_path], mailing, 300)
    assert Counter(figures["counts"]).total() == 300
