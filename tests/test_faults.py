"""The chaos suite, part two: faults that production brings, injected for real from outside.

A consumer frozen with SIGSTOP and resumed, clocks shifted with libfaketime, consumers in different
PID namespaces, operators editing what is being sent, storage refusing writes (a write lock held past
the busy timeout, a full disk), and gateways that misbehave on the wire. Each test is judged from the
outside: the gateway's own log of what it accepted and the database file, never the engine's view.
The guarantees checked (check_guarantees and agrees_with_gateway): nothing accepted at or after the
end, no message accepted twice, every message final, and the database saying exactly what the
gateway received (phone and text included).
"""
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from support import phones, wait_for
from simulator import read_log
from test_chaos import EchoHandler, check_guarantees
from test_engine import final, parse_utc
from test_windows import faketime_env

pytestmark = pytest.mark.chaos

# xdist groups (conftest.py): the tests judged by a deadline or a gap run one after another, never two
# at once; so do those that keep both cores busy for long (thousands of messages, two consumers).
serial = pytest.mark.xdist_group("timing")
heavy = pytest.mark.xdist_group("heavy")


@pytest.fixture(autouse=True)
def no_tracebacks(world):
    """Whatever the fault, a consumer says what happened in a line, never with a traceback."""
    yield
    assert "Traceback" not in world.consumer_logs()


def agrees_with_gateway(world, sim_logs, mailing_id):
    """The database says what the gateway received: each accepted message is recorded with the
    phone and text it arrived with, and nothing the database says went was never accepted."""
    log = [e for path in sim_logs for e in read_log(path)]
    rows = {i: (phone, text, status) for i, phone, text, status in world.query(
        "SELECT id, phone, text, status FROM message WHERE mailing_id = ?", mailing_id)}
    for entry in log:
        phone, text, status = rows[entry["id"]]
        assert status in ("sent", "unknown"), (entry, status)
        assert (int(phone), text) == (entry["phone"], entry["text"]), (entry, phone, text)
    return log


def consumer_of(world, proc):
    """The heartbeat owner of a consumer process (host:pid:tag)."""
    rows = world.query("SELECT owner FROM heartbeat WHERE pid = ?", proc.pid)
    return rows[0][0] if rows else None


def import_and_start(world, total, consumers=1, **env):
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
    return [world.start_consumer(**env) for _ in range(consumers)]


def writable(path, timeout=0.3):
    """Whether a writer can get into this SQLite file now (nobody holds its write lock)."""
    conn = sqlite3.connect(path, timeout=timeout)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def open_transactions(world):
    """PostgreSQL sessions inside a transaction for a while: a frozen client's, idle in it, or still
    'active' because its statement waits for a lock (then it already holds others)."""
    time.sleep(0.3)
    return world.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() AND state <> 'idle' "
                       "AND xact_start < clock_timestamp() - interval '250 milliseconds'")[0][0]


def stopped(pid):
    """Whether the kernel has stopped process `pid` (state T in /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] in ("T", "t")


def freeze(world, proc, tries=40):
    """SIGSTOP a consumer at a moment it is inside no transaction (a process frozen inside a write
    holds its locks: on SQLite every other writer stalls, on PostgreSQL the rows it locked, which is
    another fault, documented in the README)."""
    files = [world.db_path, world.dir / "queue.db"]
    for _ in range(tries):
        os.kill(proc.pid, signal.SIGSTOP)
        # SIGSTOP is delivered asynchronously: until the process is seen stopped it may still enter
        # a write, and the check below would pass for a process about to freeze holding the lock.
        wait_for(lambda: stopped(proc.pid), timeout=5, interval=0.005, message="the process to stop")
        if (not open_transactions(world) if world.postgres_url
                else all(writable(f) for f in files if f.exists())):
            return
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("could not freeze the consumer outside a write")


def freeze_until_taken_for_dead(world, proc, owner, seconds=25):
    """Freeze a consumer for `seconds` at least, and until another has taken it for dead (its
    heartbeat row gone, its claims taken over); then resume it. Returns when the takeover came."""
    freeze(world, proc)
    frozen_at = time.monotonic()
    try:
        try:
            wait_for(lambda: not world.query("SELECT 1 FROM heartbeat WHERE owner = ?", owner),
                     timeout=45, message="the frozen consumer taken for dead")
        except AssertionError as exc:
            # What the survivors saw is the only clue to why no takeover came.
            tails = "\n".join(line for line in world.consumer_logs().splitlines()[-60:])
            raise AssertionError(f"{exc}; heartbeats {world.query('SELECT owner, pid, seq FROM heartbeat')}"
                                 f"; consumer logs end:\n{tails}") from None
        taken_after = time.monotonic() - frozen_at
        time.sleep(max(0.0, seconds - (time.monotonic() - frozen_at)))
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    return taken_after


# ---------------------------------------------------------------------------------------------------
# 1. A live consumer taken for dead


@heavy
def test_a_frozen_consumer_taken_for_dead_sends_nothing_twice(world, simulator):
    sim = simulator(latency=(20, 60))
    world.use_gateway(sim)
    total = 8000
    # Slow enough that the mailing is still going when the frozen consumer comes back.
    frozen, other = import_and_start(world, total, consumers=2, MAILER_CONCURRENCY="4")
    frozen_owner = consumer_of(world, frozen)
    mailing = world.mailer_json("mailings", "create", "--text", "freeze", "--start", "now", "--end", "+2m")
    wait_for(lambda: world.query("SELECT count(*) FROM attempt WHERE owner = ?", frozen_owner)[0][0] > 200,
             timeout=30, message="the first consumer sending")
    taken_after = freeze_until_taken_for_dead(world, frozen, frozen_owner)
    resumed_at = time.time()
    wait_for(final(world, mailing["id"], total), timeout=90, message="every message final")
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    log = agrees_with_gateway(world, [sim.log_path], mailing["id"])
    after = [e for e in log if e["received_at"] >= resumed_at]
    owners = dict(world.query("SELECT owner, count(*) FROM attempt WHERE outcome = 'sent' GROUP BY owner"))
    print(f"\nfrozen 25 s, taken for dead after {taken_after:.1f} s: {figures}; accepted after the resume "
          f"{len(after)}; sent per consumer {owners}")
    assert figures["duplicates"] == 0
    # The frozen consumer came back and kept sending its own share.
    assert frozen_owner in owners


@heavy
def test_consumers_whose_clocks_differ_by_20_s_never_take_each_other_for_dead(world, simulator):
    sim = simulator(latency=(5, 20))
    world.use_gateway(sim)
    total = 6000
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
    ahead = world.start_consumer(**faketime_env(20))
    right = world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "clocks", "--start", "now", "--end", "+2m")
    started = time.monotonic()
    wait_for(final(world, mailing["id"], total), timeout=120, message="every message final")
    # Both kept beating the whole time: nobody was taken for dead.
    assert {consumer_of(world, ahead), consumer_of(world, right)} - {None} and \
        world.query("SELECT count(*) FROM heartbeat")[0][0] == 2
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    owners = dict(world.query("SELECT owner, count(*) FROM attempt GROUP BY owner"))
    print(f"\nclocks 20 s apart, {time.monotonic() - started:.1f} s: {figures}; attempts per consumer {owners}")
    assert figures["duplicates"] == 0 and figures["counts"] == {"sent": total}
    assert len(owners) == 2 and None not in owners


def unshare_available():
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return probe.returncode == 0


@heavy
def test_consumers_in_different_pid_namespaces_on_one_host(world, simulator):
    if not unshare_available():
        pytest.skip("this machine does not let a test make a PID namespace (unshare --pid needs root "
                    "or user namespaces)")
    sim = simulator(latency=(5, 20))
    world.use_gateway(sim)
    total = 6000
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
    world.start_consumer()
    # A second consumer in a PID namespace of its own (a container with host networking): same host
    # name, PIDs that mean nothing outside it.
    log = open(world.dir / "consumer-ns.log", "w")
    inside = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
                               *world.consumer_command()],
                              env=world.env, cwd=world.root, stdout=log, stderr=subprocess.STDOUT)
    world.consumers.append(inside)
    wait_for(lambda: world.query("SELECT count(*) FROM heartbeat")[0][0] == 2, timeout=20,
             message="the second consumer's heartbeat")
    nodes = {n for (n,) in world.query("SELECT node FROM heartbeat")}
    assert len(nodes) == 2, nodes  # the two namespaces are told apart
    mailing = world.mailer_json("mailings", "create", "--text", "ns", "--start", "now", "--end", "+2m")
    wait_for(final(world, mailing["id"], total), timeout=120, message="every message final")
    assert world.query("SELECT count(*) FROM heartbeat")[0][0] == 2  # nobody was taken for dead
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    owners = dict(world.query("SELECT owner, count(*) FROM attempt GROUP BY owner"))
    print(f"\ntwo PID namespaces: {figures}; attempts per consumer {owners}")
    assert figures["duplicates"] == 0 and figures["counts"] == {"sent": total}
    assert len(owners) == 2


@serial
def test_every_message_is_final_by_the_end_plus_the_read_timeout_though_a_consumer_is_frozen(world, simulator, running_mailing):
    sim = simulator(latency=1500)
    world.use_gateway(sim)
    world.env["MAILER_READ_TIMEOUT"] = "3"
    total = 400
    mailing, consumers = running_mailing(total, end="+6s", consumers=2, MAILER_CONCURRENCY="8")
    end = parse_utc(mailing["end"]).timestamp()
    sending = wait_for(lambda: world.query("SELECT lease_owner FROM message WHERE sending_since IS NOT NULL "
                                           "LIMIT 1"), timeout=5, interval=0.02, message="messages on the wire")
    owner = sending[0][0]
    frozen = next(p for p in consumers if consumer_of(world, p) == owner)
    on_wire = "SELECT count(*) FROM message WHERE lease_owner = ? AND sending_since IS NOT NULL"
    freeze(world, frozen)
    try:
        # The other consumer finishes the mailing: what the frozen one had on the wire is in doubt
        # once the end and the read timeout have passed (the watch looks every 5 s).
        wait_for(lambda: not world.statuses(mailing["id"]).get("pending"), timeout=end + 20 - time.time(),
                 message="every message final while a consumer is frozen")
        final_after = time.time() - end
        held = world.statuses(mailing["id"])
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    # Resumed, the frozen consumer's late answers settle what it had on the wire.
    wait_for(lambda: not world.query(on_wire + " AND status = 'unknown'", owner)[0][0], timeout=15,
             message="the late answers settled")
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    print(f"\nfrozen across the end: all final {final_after:.1f} s after the end ({held}); after the "
          f"resume {figures['counts']}")
    assert held.get("unknown", 0) > 0
    assert final_after <= 3 + 1 + 5 + 3  # read timeout, grace, the watch's period, slack


# ---------------------------------------------------------------------------------------------------
# 2. What goes out is what the database says


def test_edits_apply_to_everything_not_yet_on_the_wire(world, simulator, running_mailing):
    sim = simulator(latency=150)
    world.use_gateway(sim)
    total = 150
    # One request at a time, a whole batch claimed at once: most messages wait, claimed, while the
    # operator changes things (150 x 150 ms: time for five `mailer` commands on a loaded machine).
    mailing, _ = running_mailing(total, text="old text", MAILER_CONCURRENCY="1", MAILER_DISPATCHERS="1")
    wait_for(lambda: len(read_log(sim.log_path)) >= 3, timeout=20, message="the first sends")
    clients = [c for (c,) in world.query(
        "SELECT client_id FROM message WHERE mailing_id = ? AND status = 'pending' "
        "AND sending_since IS NULL ORDER BY id DESC LIMIT 6", mailing["id"])]
    edited, deleted = clients[:3], clients[3:]
    for i, client in enumerate(edited):
        world.mailer("clients", "edit", client, "--phone", f"7911000000{i}")
    world.mailer("clients", "delete", *deleted)
    world.mailer("mailings", "edit", mailing["id"], "--text", "new text")
    edit_done = time.time()
    wait_for(final(world, mailing["id"], total), timeout=60, message="every message final")
    log = agrees_with_gateway(world, [sim.log_path], mailing["id"])
    got = {e["phone"] for e in log}
    assert {79110000000, 79110000001, 79110000002} <= got  # the new phones, not the old ones
    cancelled = world.query("SELECT id FROM message WHERE mailing_id = ? AND status = 'cancelled'",
                            mailing["id"])
    assert len(cancelled) == 3 and not {i for (i,) in cancelled} & {e["id"] for e in log}
    late = [e for e in log if e["received_at"] > edit_done + 0.1]
    assert late and all(e["text"] == "new text" for e in late)
    print(f"\nedits: {len(late)} sent after the text edit, all with the new text; "
          f"deleted clients' messages cancelled and never received; statuses {world.statuses(mailing['id'])}")


@serial
def test_a_moved_end_stops_sending_at_the_new_end(world, simulator, running_mailing):
    sim = simulator(latency=1000)
    world.use_gateway(sim)
    total = 3000
    mailing, _ = running_mailing(total, end="+5m")
    wait_for(lambda: len(read_log(sim.log_path)) >= 50, timeout=20, message="sending")
    moved = world.mailer_json("mailings", "edit", mailing["id"], "--end", "+3s")
    new_end = parse_utc(moved["end"]).timestamp()
    wait_for(final(world, mailing["id"], total), timeout=40, message="every message final")
    log = read_log(sim.log_path)
    late = [e["received_at"] - new_end for e in log if e["received_at"] >= new_end]
    print(f"\nend moved to 3 s ahead: {len(log)} accepted, {len(late)} at or after the new end")
    assert not late, f"{len(late)} received at or after the new end, up to {max(late):.2f} s late"
    check_guarantees(world, [sim.log_path], moved, total)


# ---------------------------------------------------------------------------------------------------
# 3. Storage faults


def can_mount_tmpfs():
    target = "/tmp/mailer-tmpfs-probe"
    os.makedirs(target, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", target],
                        capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", target], capture_output=True)
    return ok


@contextlib.contextmanager
def write_lock_held(world):
    """Another process holds the database's write lock (past the consumer's 1 s busy timeout)."""
    holder = sqlite3.connect(world.db_path, timeout=10)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.rollback()
        holder.close()


@contextlib.contextmanager
def disk_full(world):
    """The disk the database and the queue live on is filled to the last byte."""
    filler = world.db_path.parent / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    try:
        yield
    finally:
        filler.unlink()


def on_small_disk(world):
    if os.geteuid() != 0 or not shutil.which("mount") or not can_mount_tmpfs():
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root (mount)")
    disk = world.dir / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], check=True)
    world.cleanups.append(lambda: subprocess.run(["umount", "-l", str(disk)], check=False))
    world.db_path = disk / "mailer.db"
    world.env.update(MAILER_DB_URL=f"sqlite:///{world.db_path}", MAILER_QUEUE_URL=f"sqlite:///{disk / 'queue.db'}",
                     MAILER_LOG_FILE=str(world.dir / "mailer.log"))


@serial
@pytest.mark.parametrize("fault", ["write lock", "disk full"])
def test_a_storage_fault_for_8_s_loses_no_answer_and_strands_nothing(world, simulator, fault, running_mailing):
    if fault == "disk full":
        on_small_disk(world)
    sim = simulator(latency=(5, 20))
    world.use_gateway(sim)
    total = 4000
    mailing, _ = running_mailing(total, end="+90s", MAILER_DB_TIMEOUT="1")
    wait_for(lambda: len(read_log(sim.log_path)) >= 300, timeout=20, message="sending")
    began = time.time()
    with (write_lock_held if fault == "write lock" else disk_full)(world):
        time.sleep(8)
    cleared = time.time()
    received = lambda: [e["received_at"] for e in read_log(sim.log_path)]  # noqa: E731
    # By itself, once storage works again (how soon is printed below: ~1-2 s on a quiet machine).
    wait_for(lambda: any(t > cleared for t in received()), timeout=15, message="sending resumed")
    resumed = min(t for t in received() if t > cleared) - cleared
    wait_for(final(world, mailing["id"], total), timeout=120, message="every message final")
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    during = [t for t in received() if began + 1.5 < t < cleared]
    print(f"\n{fault} for 8 s: sending resumed {resumed:.2f} s after; {len(during)} sent during it; {figures}")
    assert "storage refused" in world.consumer_logs()  # the fault was real, and met
    assert figures["duplicates"] == 0 and figures["counts"] == {"sent": total}, figures
    if fault == "write lock":
        assert len(during) < 200  # nothing new went on the wire while storage could not record it


# ---------------------------------------------------------------------------------------------------
# 6. Secrets


class CuttingEchoHandler(EchoHandler):
    """An echo cut 31 characters in: a piece of the token, cut in the middle."""
    cut = 31


def pieces(secret, size=7):
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def test_no_piece_of_the_token_leaks_from_a_cut_echo(world):
    secret = "s3cr3tTOKEN" + "abcdefghij0123456789" * 2
    server = ThreadingHTTPServer(("127.0.0.1", 0), CuttingEchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        world.env.update(PROBE_URL=f"http://127.0.0.1:{server.server_address[1]}/v1", PROBE_TOKEN=secret)
        import_and_start(world, 5)
        mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+4s")
        wait_for(final(world, mailing["id"], 5), timeout=20, message="all final")
    finally:
        server.shutdown()
    errors = [e for (e,) in world.query("SELECT error FROM attempt")]
    assert errors and all("you sent Bearer [token]" in e for e in errors), errors[:2]
    outputs = [world.mailer("mailings", "show", mailing["id"], "--json").stdout,
               world.mailer("logs", "--mailing", mailing["id"]).stdout, world.consumer_logs()]
    blobs = outputs + [p.read_bytes().decode("utf-8", "replace") for p in world.dir.iterdir() if p.is_file()]
    leaked = {piece for piece in pieces(secret) for blob in blobs if piece in blob}
    assert not leaked, f"pieces of the token found: {sorted(leaked)[:5]}"


def test_a_token_with_a_carriage_return_is_refused_at_start_up(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    token = "crlf-token-abcdefghijklmnop"
    world.env["PROBE_TOKEN"] = token + "\r"
    world.mailer("clients", "add", "--phone", "79000000001")
    for command in (["consumer"], ["run", "--headless"]):
        result = world.mailer(*command, check=False)
        assert result.returncode == 2, result
        assert result.stderr.startswith("error: PROBE_TOKEN: has white space around it"), result.stderr
        assert "Traceback" not in result.stderr
        assert not {p for p in pieces(token) if p in result.stdout + result.stderr}


# ---------------------------------------------------------------------------------------------------
# 4. The gateway's answers


def attempt_rows(world, mailing_id):
    return world.query("SELECT message_id, at, outcome, http_status, latency_ms, error FROM attempt "
                       "WHERE mailing_id = ? ORDER BY id", mailing_id)


@serial
def test_a_trickling_answer_holds_a_sender_no_longer_than_the_read_timeout(world, simulator, running_mailing):
    sim = simulator(latency=(2, 10), trickle_rate=0.01, trickle_interval=1.5, seed=4)
    world.use_gateway(sim)
    world.env["MAILER_READ_TIMEOUT"] = "2"
    total = 3000
    mailing, _ = running_mailing(total, end="+60s")
    started = time.monotonic()
    wait_for(final(world, mailing["id"], total), timeout=75, message="every message final")
    took = time.monotonic() - started
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    latencies = [r[4] for r in attempt_rows(world, mailing["id"]) if r[4] is not None]
    trickled = sim.stats()["faults"]["trickle"]
    print(f"\n{trickled} trickled answers: all final in {took:.1f} s, slowest attempt "
          f"{max(latencies):.0f} ms; {figures}")
    assert trickled >= 10
    assert max(latencies) <= 2000 + 1500, max(latencies)  # the deadline, plus scheduling slack
    assert figures["counts"].get("expired", 0) == 0
    assert figures["counts"]["unknown"] == trickled  # accepted, but no whole answer: in doubt


def test_a_redirect_is_never_taken_for_sent(world, simulator, running_mailing):
    sim = simulator(redirect_rate=1.0)
    world.use_gateway(sim)
    total = 50
    mailing, _ = running_mailing(total, end="+6s")
    wait_for(final(world, mailing["id"], total), timeout=30, message="every message final")
    counts = world.statuses(mailing["id"])
    rows = attempt_rows(world, mailing["id"])
    reason = world.query("SELECT reason FROM gateway_status")[0][0]
    print(f"\nredirects: {counts}, {len(rows)} attempts, gateway paused: {reason[:80]}")
    assert not read_log(sim.log_path) and not counts.get("sent")
    assert counts == {"expired": total}  # the gateway took none of them, and sending paused
    assert rows and all(r[3] == 302 and r[2] == "retry" for r in rows)
    assert len(rows) <= 64  # one round, then the pause
    assert "redirect" in reason and sim.stats()["elsewhere"] == 0  # never followed


def test_retry_after_as_an_http_date_is_honoured(world, simulator, running_mailing):
    sim = simulator(throttle_rate=0.5, retry_after=3, retry_after_date=True, seed=5)
    world.use_gateway(sim)
    # 20 messages: about half are throttled at each try, so the last goes through after ~5 tries.
    mailing, _ = running_mailing(20)
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == 20, timeout=60, message="all sent")
    rows = sorted(attempt_rows(world, mailing["id"]), key=lambda r: r[0])  # by message, in order
    gaps = [(parse_utc(b[1]) - parse_utc(a[1])).total_seconds()
            for a, b in zip(rows, rows[1:]) if a[0] == b[0] and a[3] == 429]
    print(f"\nRetry-After as a date 3 s ahead: gaps {min(gaps):.2f}-{max(gaps):.2f} s")
    # A date has whole seconds: 3 s ahead of the answer's own Date is at least 2 s after it.
    assert gaps and min(gaps) >= 2.0, gaps


def test_huge_answers_are_read_only_up_to_a_cap(world, simulator, running_mailing):
    sim = simulator(huge_rate=0.2, huge_bytes=32 * 1024 * 1024, seed=6)
    world.use_gateway(sim)
    total = 200
    mailing, (consumer,) = running_mailing(total, end="+60s", MAILER_CONCURRENCY="8")
    wait_for(final(world, mailing["id"], total), timeout=60, message="every message final")
    with open(f"/proc/{consumer.pid}/status") as fh:
        peak_kb = int(next(line for line in fh if line.startswith("VmHWM")).split()[1])
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    huge = sim.stats()["faults"]["huge"]
    print(f"\n{huge} answers of 32 MiB: consumer peak RSS {peak_kb / 1024:.0f} MiB; {figures}")
    assert huge >= 20 and peak_kb < 200 * 1024
    assert figures["counts"]["unknown"] == huge  # a 200 whose answer cannot be read whole is in doubt


# ---------------------------------------------------------------------------------------------------
# 5. One policy for attempts in doubt


@pytest.mark.parametrize("policy", ["hold", "retry"])
def test_in_doubt_policy(world, simulator, policy, running_mailing):
    """A connection reset after the request was read, and a success cut off mid-answer: the gateway
    may have the message. hold: unknown, never posted again by itself; retry: posted again with the
    same msgId. Either way never `expired`, since it may have gone."""
    sim = simulator(reset_rate=0.1, half_rate=0.1, seed=7)
    world.use_gateway(sim)
    world.env["MAILER_IN_DOUBT"] = policy
    total = 300
    mailing, _ = running_mailing(total, end="+8s")
    wait_for(final(world, mailing["id"], total), timeout=40, message="every message final")
    counts = world.statuses(mailing["id"])
    log = read_log(sim.log_path)
    accepted_ids = [e["id"] for e in log]
    posts = {}
    for message_id, *_ in attempt_rows(world, mailing["id"]):
        posts[message_id] = posts.get(message_id, 0) + 1
    stats = sim.stats()
    print(f"\nMAILER_IN_DOUBT={policy}: {counts}; resets {stats['faults']['reset']}, half answers "
          f"{stats['faults']['half']}, accepted {len(log)} ({len(set(accepted_ids))} distinct)")
    assert "expired" not in counts and not counts.get("pending")
    sent = {i for (i,) in world.query("SELECT id FROM message WHERE status = 'sent'")}
    assert sent <= set(accepted_ids)
    if policy == "hold":
        assert max(posts.values()) == 1  # nothing in doubt was posted again
        assert len(accepted_ids) == len(set(accepted_ids))
        assert counts["unknown"] == stats["faults"]["reset"] + stats["faults"]["half"]
        assert counts["sent"] + counts["unknown"] == total
        errors = {e.split(":")[0] for (e,) in world.query(
            "SELECT last_error FROM message WHERE status = 'unknown'")}
        assert errors == {"in doubt"}, errors
    else:
        assert max(posts.values()) > 1  # in doubt, then posted again
        twice = {i for i in accepted_ids if accepted_ids.count(i) > 1}
        in_doubt = {i for (i,) in world.query("SELECT id FROM message WHERE in_doubt")}
        assert twice <= in_doubt  # only what was in doubt reached the gateway twice
        assert counts.get("sent", 0) >= total - 10


def test_the_operator_resends_what_is_in_doubt(world, simulator):
    sim = simulator(seed=8)
    world.use_gateway(sim)
    total = 100
    import_and_start(world, total)
    # Half answers for the first sends: 5 s covers the `mailer` command that creates the mailing on a
    # loaded machine (the test waits for the rest of the window below).
    sim.begin("half", 5)
    half_until = time.monotonic() + 5
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+2m")
    wait_for(final(world, mailing["id"], total), timeout=30, message="every message final")
    doubtful = world.statuses(mailing["id"]).get("unknown", 0)
    assert doubtful > 0
    stats = world.mailer_json("stats", mailing["id"])
    assert stats["unknown"] == doubtful
    shown = world.mailer("mailings", "show", mailing["id"]).stdout
    assert f"in doubt={doubtful}" in shown, shown
    time.sleep(max(0.0, half_until - time.monotonic()))  # the gateway answers whole again
    # One of them opts out meanwhile: the resend leaves it in doubt, and says so.
    refused_id, refused_phone = world.query("SELECT id, phone FROM message WHERE status = 'unknown' "
                                            "ORDER BY id LIMIT 1")[0]
    world.mailer("optout", "add", refused_phone)
    said = world.mailer("mailings", "resend", mailing["id"], "--in-doubt").stdout
    assert f"{doubtful - 1} message(s) in doubt will be sent again" in said
    assert "1 stay in doubt: their phones are on the stop list" in said
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": total - 1, "unknown": 1}, timeout=30,
             message="all sent but the opted-out one")
    log = read_log(sim.log_path)
    twice = [i for i in {e["id"] for e in log} if [e["id"] for e in log].count(i) == 2]
    assert len(twice) == doubtful - 1  # the same msgId, posted again by the operator's choice
    assert refused_id not in twice
    result = world.mailer_json("mailings", "resend", mailing["id"], "--in-doubt")
    assert (result["resent"], result["opted_out"]) == (0, 1)
    # Once the mailing has ended there is nothing to resend into.
    world.mailer("mailings", "edit", mailing["id"], "--end", "+2s")
    wait_for(lambda: world.mailer_json("stats", mailing["id"])["state"] == "finished", timeout=20,
             message="the mailing finished")
    refused = world.mailer("mailings", "resend", mailing["id"], "--in-doubt", check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("error: state:")


def test_the_scrubber_never_makes_a_piece_of_the_token():
    """A JWT's pieces around a cut: what stands in for the token must not join the text beside it
    into a new piece of it (an earlier mask of the first 6 characters after 'CJ9.' made 'CJ9.eyJ')."""
    from engine.gateways.base import scrub
    token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.SIGNATUREabcd"
    for text in (f"bad token ...CJ9.{token[37:]}", f"got {token}", f"got {token[:30]}…",
                 f"{token[20:40]} and {token[-12:]}"):
        out = scrub(text, token)
        assert not any(token[i:i + 7] in out for i in range(len(token) - 6)), (text, out)


class EarlyHintsHandler(EchoHandler):
    """A gateway that accepts, but answers `103 Early Hints` before its `200 {"code": 0}`."""
    accepted = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.accepted.append(int(self.path.rsplit("/", 1)[1]))
        body = b'{"code": 0, "message": "OK"}'
        self.wfile.write(b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                         b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def test_an_interim_answer_is_in_doubt_not_a_failure(world):
    server = ThreadingHTTPServer(("127.0.0.1", 0), EarlyHintsHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        world.env.update(PROBE_URL=f"http://127.0.0.1:{server.server_address[1]}/v1", PROBE_TOKEN="t" * 20)
        import_and_start(world, 30, MAILER_CONCURRENCY="2", MAILER_DISPATCHERS="1")
        mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+1m")
        wait_for(final(world, mailing["id"], 30), timeout=30, message="all final")
    finally:
        server.shutdown()
    # Each was posted once and is in doubt; none is failed, and no 200 meant for one was read as
    # another's answer.
    assert world.statuses(mailing["id"]) == {"unknown": 30}
    posted = EarlyHintsHandler.accepted
    assert len(posted) == len(set(posted)) >= 25 and set(posted) <= {i for (i,) in world.query("SELECT id FROM message")}
    assert world.mailer_json("stats", mailing["id"])["state"] == "running"


@serial
@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_a_consumer_frozen_holding_marks_does_not_overtake_a_pause_or_cancel(world, simulator, action, running_mailing):
    sim = simulator(latency=(20, 60))
    world.use_gateway(sim)
    mailing, (consumer,) = running_mailing(3000)
    wait_for(lambda: len(read_log(sim.log_path)) >= 300, timeout=20, message="sending")
    freeze(world, consumer)
    try:
        world.mailer("mailings", action, mailing["id"])
        paused_at = time.time()
        wait_for(lambda: time.time() > paused_at + 4, timeout=10, message="4 s frozen")
    finally:
        os.kill(consumer.pid, signal.SIGCONT)
    resumed_at = time.time()
    owner = consumer_of(world, consumer)
    beats = world.query("SELECT seq FROM heartbeat WHERE owner = ?", owner)[0][0]
    # Resumed, the consumer settles or hands back everything it had marked.
    wait_for(lambda: not world.query("SELECT count(*) FROM message WHERE sending_since IS NOT NULL")[0][0],
             timeout=20, message="nothing left on the wire")
    # The witness that it ran on after the resume (anything it were to send late, it sends then): two
    # heartbeats of its own.
    wait_for(lambda: world.query("SELECT seq FROM heartbeat WHERE owner = ?", owner)[0][0] >= beats + 2,
             timeout=20, message="two heartbeats after the resume")
    # 50 ms: the documented instant between the last check and the write (README, Guarantees).
    late = [e for e in read_log(sim.log_path) if e["received_at"] > resumed_at + 0.05]
    counts = world.statuses(mailing["id"])
    print(f"\n{action} while its consumer was frozen: {len(late)} received after the resume; {counts}")
    assert not late
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    if action == "cancel":  # what the frozen consumer had marked is cancelled too, once it is back
        assert set(counts) <= {"sent", "cancelled", "unknown"}, counts
