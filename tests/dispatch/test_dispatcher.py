"""The dispatcher in process: what it posts, what it records, and what it refuses to post, judged by
the simulator's log of accepted messages and by the database."""
import datetime as dt
import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import service
from domain.times import utcnow
from domain.vocabulary import CANCELLED, EXPIRED, PENDING, SENT
from engine import dispatcher, liveness
from engine.gateways.probe import ProbeGateway
from models import Attempt, Mailing, Message
from simulator import read_log

# One worker runs them all, so one PostgreSQL server serves the tier (session fixtures are per worker).
pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]


def clients(n, first=79000000000):
    rows = "".join(f"{first + i},,t,Europe/Moscow\n" for i in range(n))
    report = service.import_clients(io.StringIO("phone,operator,tag,tz\n" + rows))
    assert report.imported == n


def running_mailing(text="engine tier", end="+10m"):
    mailing = service.create_mailing(text=text, start="now", end=end)
    assert mailing.state == "running"
    return mailing


def statuses(mailing_id):
    return {s: Message.select().where((Message.mailing == mailing_id) & (Message.status == s)).count()
            for s in (PENDING, SENT, EXPIRED, CANCELLED)}


def send_all(sim, timeout=30.0):
    """Dispatch until nothing is left to wait for (bounded): what a consumer's dispatcher loop does."""
    client = ProbeGateway(sim.url, sim.token)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dispatcher.dispatch(client, budget=2.0):
            continue
        due = dispatcher.due_soon()
        if due is None:
            return
        time.sleep(min(0.2, max(0.0, (due - utcnow()).total_seconds())))
    raise AssertionError(f"messages still due after {timeout} s")


def test_each_message_is_posted_once_and_recorded_as_the_gateway_received_it(backend, simulator):
    sim = simulator()
    clients(120)
    mailing = running_mailing("hello from the engine tier")
    send_all(sim)
    log = read_log(sim.log_path)
    assert sorted(e["id"] for e in log) == sorted(m.id for m in Message.select(Message.id))
    rows = {m.id: m for m in Message.select()}
    for entry in log:
        assert rows[entry["id"]].status == SENT
        assert (str(entry["phone"]), entry["text"]) == (rows[entry["id"]].phone, rows[entry["id"]].text)
    assert Attempt.select().where(Attempt.outcome == SENT).count() == 120
    assert statuses(mailing.id)[SENT] == 120


def test_server_errors_are_retried_until_accepted(backend, simulator):
    sim = simulator(error_rate=0.5, seed=3)
    clients(40)
    mailing = running_mailing()
    send_all(sim)
    assert statuses(mailing.id)[SENT] == 40
    assert len({e["id"] for e in read_log(sim.log_path)}) == 40
    assert Attempt.select().where(Attempt.outcome == "retry").count() > 0
    # Every POST is one journal row and one count on its message: the figures agree everywhere.
    assert sum(m.attempts for m in Message.select()) == Attempt.select().count()


def test_a_mailing_cancelled_after_the_claim_posts_nothing(backend, simulator):
    sim = simulator()
    clients(30)
    mailing = running_mailing()
    claimed = dispatcher.claim(100)
    assert len(claimed) == 30
    service.set_mailing_state(mailing.id, "cancel")
    with ThreadPoolExecutor(4) as pool:
        dispatcher.send_batch(claimed, ProbeGateway(sim.url, sim.token), pool)
    assert read_log(sim.log_path) == []
    assert statuses(mailing.id)[CANCELLED] == 30


def test_nothing_is_posted_within_the_end_guard(backend, simulator):
    sim = simulator()
    clients(20)
    mailing = running_mailing(end="+30s")
    claimed = dispatcher.claim(100)
    # The end moves to within the guard after the claim: the mark refuses every one of them.
    Message.update(next_attempt_at=utcnow()).execute()
    Mailing.update(end_at=utcnow() + dt.timedelta(seconds=0.2)).where(Mailing.id == mailing.id).execute()
    with ThreadPoolExecutor(4) as pool:
        dispatcher.send_batch(claimed, ProbeGateway(sim.url, sim.token), pool)
    assert read_log(sim.log_path) == []
    assert statuses(mailing.id)[EXPIRED] == 20
    # Nothing was posted: no attempt counted, no journal row (a decision is not an attempt).
    assert sum(m.attempts for m in Message.select()) == 0 and Attempt.select().count() == 0


def test_a_dead_consumers_claims_are_released_and_its_wire_held_in_doubt(backend):
    clients(10)
    mailing = running_mailing()
    ids = [m.id for m in Message.select(Message.id).order_by(Message.id)]
    now = utcnow()
    Message.update(lease_owner="ghost:1:x", lease_until=now).where(Message.id.in_(ids[:6])).execute()
    Message.update(sending_since=now).where(Message.id.in_(ids[:2])).execute()
    clock = [100.0]
    watch = liveness.Watch()
    assert liveness.recover(watch=_clocked(watch, clock))["dead_owners"] == 0  # first sight: alive
    clock[0] += watch.stale
    result = liveness.recover(watch=_clocked(watch, clock))
    assert (result["unknown"], result["released"]) == (2, 4)
    held = Message.select().where(Message.id.in_(ids[:2]))
    assert {m.status for m in held} == {"unknown"} and all(m.lease_owner == "ghost:1:x" for m in held)
    assert Message.select().where(Message.lease_owner.is_null(False)).count() == 2
    assert Message.select().where(Message.mailing == mailing.id, Message.status == PENDING).count() == 8


class _clocked:
    """A Watch read on a clock the test turns."""

    def __init__(self, watch, clock):
        self.watch, self.clock = watch, clock
        self.stale = watch.stale

    def dead(self, owners, beats):
        return self.watch.dead(owners, beats, clock=lambda: self.clock[0])


def test_the_heartbeat_carries_the_gateways_health_as_the_attempts_found_it(backend, simulator):
    """A gateway that answers, then is gone: the sending threads' verdicts say so, and the next beat
    writes it where the console reads it (the columns of migration 0006, on both backends)."""
    from domain import stats

    sim = simulator()
    client = ProbeGateway(sim.url, sim.token)
    clients(5)
    running_mailing("while the gateway answers")
    assert dispatcher.dispatch(client, budget=2.0) == 5
    liveness.beat(client.describe(), client.health.current())
    shown = stats.dashboard().gateway_health()
    assert not shown.failing and shown.ok_at is not None
    answered = shown.ok_at
    sim.stop()  # its port now refuses connections
    clients(3, first=79100000000)
    running_mailing("after the gateway went away")
    assert dispatcher.dispatch(client, budget=1.0) >= 8  # a retry each (the mailing reaches all 8)
    health = client.health.current()
    assert health.failing and "Connection refused" in health.cause
    liveness.beat(client.describe(), health)
    row = liveness.Heartbeat.get()
    assert row.gateway_failing_since is not None and row.gateway_failing_since >= answered
    assert row.gateway_error == health.cause
    shown = stats.dashboard().gateway_health()
    assert shown.failing and shown.cause == health.cause and shown.ok_at == answered
    # The journal says the same of the attempts: retries, not sent, refused.
    assert {a.error for a in Attempt.select().where(Attempt.outcome == "retry")} == {health.cause}
