"""Scale-out end to end: PostgreSQL holds the data, Redis the queue, and two consumer processes share
one mailing of 20,000 messages. The real `mailer` command line and consumers, real HTTP to the gateway
simulator, and the simulator's log of accepted msgIds as the ground truth: every message delivered
exactly once, and both consumers did part of the sending.

Both servers are started here on 127.0.0.1 in temporary directories (see servers.py). In CI
(CI=true) missing servers or drivers fail the test; elsewhere they skip it.
"""
import signal
import time
from collections import Counter

import pytest

from support import phones, wait_for
from simulator import read_log

# Both cores busy for half a minute and more (20,000 sends, two consumers, PostgreSQL): in the xdist
# group of the CPU-heavy tests (conftest.py), which also keeps both tests on the one worker that
# started the servers (session fixtures are per worker).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("heavy")]

TOTAL = 20_000


def owner_pid(owner):
    """A consumer's owner name is host:pid:tag."""
    return int(owner.split(":")[-2])


def test_two_consumers_on_postgres_and_redis_deliver_each_message_once(world, simulator, postgres,
                                                                       redis_server):
    world.use_database(postgres.create_database("scale_out"))
    world.env["MAILER_QUEUE_URL"] = redis_server.url(0)
    # The production read timeout: on two busy cores a 2 s timeout could retry a send the gateway
    # already took, and this test counts duplicates.
    world.env["MAILER_READ_TIMEOUT"] = "10"
    sim = simulator()
    world.use_gateway(sim)

    report = world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(TOTAL)])
    assert f"imported {TOTAL} of {TOTAL}" in report.stdout
    assert world.query("SELECT count(*) FROM client")[0][0] == TOTAL
    # The schema came from the migrations, the partial lease index included.
    indexes = {name: sql for name, sql in world.query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'message'")}
    assert "WHERE (lease_owner IS NOT NULL)" in indexes["message_lease_owner"]
    assert world.query("SELECT count(*) FROM schema_migration")[0][0] >= 3

    first, second = world.start_consumer(), world.start_consumer()
    started = time.monotonic()
    mailing = world.mailer_json("mailings", "create", "--text", "scale out", "--start", "now",
                                "--end", "+30m")
    assert mailing["state"] == "running"
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == TOTAL, timeout=300, interval=0.5,
             message=f"{TOTAL} sent")
    elapsed = time.monotonic() - started
    print(f"\n{TOTAL} messages sent by two consumers on PostgreSQL + Redis in {elapsed:.1f} s "
          f"({TOTAL / elapsed:.0f}/s)")

    # The gateway's own record: every message accepted exactly once.
    log = read_log(sim.log_path)
    duplicates = {k: n for k, n in Counter(e["id"] for e in log).items() if n > 1}
    assert not duplicates, f"delivered more than once: {list(duplicates.items())[:10]}"
    ids = {row[0] for row in world.query("SELECT id FROM message WHERE mailing_id = ?", mailing["id"])}
    assert len(ids) == TOTAL and {e["id"] for e in log} == ids
    assert world.statuses(mailing["id"]) == {"sent": TOTAL}
    assert world.query("SELECT min(attempts), max(attempts) FROM message")[0] == (1, 1)

    # The journal says which consumer settled each send: both did a share, and nothing else did.
    by_owner = dict(world.query("SELECT owner, count(*) FROM attempt WHERE outcome = 'sent' GROUP BY owner"))
    print(f"sends per consumer: {by_owner}")
    assert sum(by_owner.values()) == TOTAL
    assert {owner_pid(o) for o in by_owner} == {first.pid, second.pid}, by_owner
    assert min(by_owner.values()) > 0

    stats = world.mailer_json("stats", mailing["id"])
    assert stats["total"] == TOTAL and stats["sent"] == TOTAL and stats["pending"] == 0

    # Graceful stops on PostgreSQL too: each consumer removes its heartbeat.
    for proc in (first, second):
        world.stop(proc, signal.SIGTERM)
        assert proc.returncode == 0, world.consumer_logs()[-3000:]
    assert world.query("SELECT count(*) FROM heartbeat")[0][0] == 0
    assert "Traceback" not in world.consumer_logs()


def test_a_consumer_frozen_and_resumed_on_postgres_sends_nothing_twice(world, simulator, postgres,
                                                                       redis_server):
    """The takeover of issue 9 on the scale-out stack: one of two consumers frozen (SIGSTOP) for 25 s
    while it holds claims, taken for dead by the other, then resumed. The gateway's log and the
    database must still agree, with no message accepted twice."""
    from test_chaos import check_guarantees
    from test_engine import final
    from test_faults import agrees_with_gateway, consumer_of, freeze_until_taken_for_dead

    world.use_database(postgres.create_database("frozen"))
    world.env["MAILER_QUEUE_URL"] = redis_server.url(1)
    world.env["MAILER_READ_TIMEOUT"] = "10"
    sim = simulator(latency=(20, 60))
    world.use_gateway(sim)
    total = 8000
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
    frozen = world.start_consumer(MAILER_CONCURRENCY="4")
    world.start_consumer(MAILER_CONCURRENCY="4")
    frozen_owner = consumer_of(world, frozen)
    mailing = world.mailer_json("mailings", "create", "--text", "freeze", "--start", "now", "--end", "+3m")
    wait_for(lambda: world.query("SELECT count(*) FROM attempt WHERE owner = ?", frozen_owner)[0][0] > 200,
             timeout=60, message="the first consumer sending")
    taken_after = freeze_until_taken_for_dead(world, frozen, frozen_owner)
    wait_for(final(world, mailing["id"], total), timeout=150, interval=0.5, message="every message final")
    figures = check_guarantees(world, [sim.log_path], mailing, total)
    agrees_with_gateway(world, [sim.log_path], mailing["id"])
    owners = dict(world.query("SELECT owner, count(*) FROM attempt WHERE outcome = 'sent' GROUP BY owner"))
    print(f"\nPostgreSQL, a consumer frozen and taken for dead after {taken_after:.0f} s: {figures}; "
          f"sent per consumer {owners}")
    assert figures["duplicates"] == 0
    assert frozen_owner in owners and len(owners) == 2
