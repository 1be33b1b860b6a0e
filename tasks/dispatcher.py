"""Claim, send and settle messages in batches: the database decides what is left to send.

A dispatcher claims a batch of due messages with a lease naming this process, sends them through a
thread pool, and settles the answers in bulk. Before a POST can leave, its message is marked
`sending_since` (in small groups); a message found marked after its owner died may have reached the
gateway, so it is settled `unknown` and never sent again. A message claimed but not yet marked is
simply released. One msgId (the message id) serves every attempt of a message.
"""
import datetime as dt
import os
import random
import contextlib
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import peewee as pw

import models
from models import (CANCELLED, EXPIRED, FAILED, PAUSED, PENDING, RUNNING, SENT, UNKNOWN, Attempt,
                    Client, Heartbeat, Mailing, Message, db, utcnow)
from tasks import metrics, probe
from tasks.logs import event, events

OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
HEARTBEAT_EVERY = 2.0
HEARTBEAT_STALE = dt.timedelta(seconds=15)
LEASE = dt.timedelta(minutes=10)  # a last resort: a dead owner is normally seen by its heartbeat
IN_CHUNKS = 500  # ids per IN (...) list


@dataclass
class Settings:
    batch: int = int(os.environ.get("MAILER_BATCH", "256"))
    concurrency: int = int(os.environ.get("MAILER_CONCURRENCY", "32"))
    budget: float = float(os.environ.get("MAILER_DISPATCH_BUDGET", "5"))
    retry_base: float = float(os.environ.get("MAILER_RETRY_BASE", "1"))
    retry_cap: float = float(os.environ.get("MAILER_RETRY_CAP", "300"))
    # No attempt starts this close to the end: a request needs a moment to reach the gateway.
    end_guard: float = float(os.environ.get("MAILER_END_GUARD", "0.5"))
    # After a 401 nobody sends for this long; then one batch finds out whether the token works again.
    auth_pause: float = float(os.environ.get("MAILER_AUTH_PAUSE", "60"))
    # A mailing pauses itself when this share of its last attempts failed for good ...
    fail_pause_ratio: float = float(os.environ.get("MAILER_FAIL_PAUSE_RATIO", "0.5"))
    # ... counted over this many attempts, once at least this many failed.
    fail_pause_window: int = 100
    fail_pause_min: int = int(os.environ.get("MAILER_FAIL_PAUSE_MIN", "20"))


SETTINGS = Settings()


@dataclass
class Claimed:
    id: int
    mailing_id: int
    client_id: int | None
    phone: str
    attempts: int
    tz: str | None


# SQLite lets one writer in at a time and makes the others sleep in growing steps (1, 2, 5, 10 ms...):
# the dispatchers of one process queue here instead, which keeps every step short.
_write_lock = threading.RLock()


@contextlib.contextmanager
def writing():
    with _write_lock, db.atomic():
        yield


def chunks(seq, size=IN_CHUNKS):
    seq = list(seq)
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def backoff(attempts, settings=SETTINGS):
    """Exponential backoff with equal jitter: half fixed, half random."""
    delay = min(settings.retry_cap, settings.retry_base * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


# ---------------------------------------------------------------------------------------------------
# Claiming


def running_mailings(now):
    return [i for (i,) in Mailing.select(Mailing.id)
            .where((Mailing.state == RUNNING) & (Mailing.end_at > now)).tuples()]


def claim(limit, now=None, owner=OWNER):
    """Lease up to `limit` due messages of running mailings to `owner`; returns them.
    Each running mailing is read through its (mailing, status, next_attempt_at) index, in a
    random order so no mailing starves another."""
    now = now or utcnow()
    if gateway_paused():
        return []
    p = db.param
    lock = " FOR UPDATE SKIP LOCKED" if not isinstance(db.obj, pw.SqliteDatabase) else ""
    sql = (f"UPDATE message SET lease_owner = {p}, lease_until = {p} WHERE id IN ("
           f"SELECT id FROM message WHERE mailing_id = {p} AND status = 'pending' "
           f"AND next_attempt_at <= {p} AND lease_owner IS NULL "
           f"ORDER BY next_attempt_at LIMIT {p}{lock}) RETURNING id")
    mailings = running_mailings(now)
    random.shuffle(mailings)
    ids = []
    with writing():
        for mailing_id in mailings:
            if len(ids) >= limit:
                break
            params = (owner, now + LEASE, mailing_id, now, limit - len(ids))
            ids.extend(row[0] for row in db.execute_sql(sql, params).fetchall())
    if not ids:
        return []
    rows = []
    for part in chunks(ids):
        query = (Message.select(Message.id, Message.mailing, Message.client_id, Message.phone,
                                Message.attempts, Client.tz)
                 .join(Client, pw.JOIN.LEFT_OUTER, on=(Client.id == Message.client_id))
                 .where(Message.id.in_(part)).tuples())
        rows.extend(Claimed(*row) for row in query)
    rows.sort(key=lambda r: r.id)
    return rows


def due_soon(now=None):
    """When the next message becomes due (None: nothing left to wait for)."""
    now = now or utcnow()
    firsts = []
    for mailing_id in running_mailings(now):
        first = (Message.select(Message.next_attempt_at)
                 .where((Message.mailing == mailing_id) & (Message.status == PENDING)
                        & Message.lease_owner.is_null())
                 .order_by(Message.next_attempt_at).limit(1).first())
        if first is not None:
            firsts.append(first.next_attempt_at)
    if not firsts:
        return None
    pause = models.gateway_pause(now)
    return max(min(firsts), pause[0]) if pause else min(firsts)


# ---------------------------------------------------------------------------------------------------
# Settling: every write here is one statement per group, or one executemany, in one transaction.


def release(ids, owner=OWNER):
    """Hand leased messages back; with owner=None whoever holds them."""
    for part in chunks(ids):
        cond = Message.id.in_(part)
        if owner is not None:
            cond &= Message.lease_owner == owner
        Message.update(lease_owner=None, lease_until=None).where(cond).execute()


def mark_sending(ids, now):
    for part in chunks(ids):
        (Message.update(sending_since=now, attempts=Message.attempts + 1)
         .where(Message.id.in_(part)).execute())


def defer(groups, now):
    """groups: {next_open_utc: [ids]} for messages outside their client's window now."""
    with writing():
        for when, ids in groups.items():
            for part in chunks(ids):
                (Message.update(next_attempt_at=when, lease_owner=None, lease_until=None)
                 .where(Message.id.in_(part)).execute())


def settle(results, mailings, states, gateway=None):
    """Write answers in bulk. results: [(Claimed, Verdict, text)]; states: current mailing states."""
    p = db.param
    updates, journal, logged = [], [], []
    for row, verdict, text in results:
        mailing = mailings[row.mailing_id]
        answered = dt.datetime.fromtimestamp(verdict.at or time.time(), models.UTC).replace(tzinfo=None)
        attempts = row.attempts + (0 if verdict.outcome == EXPIRED else 1)
        next_at, error, sent_at, sent_text = None, verdict.error, None, None
        status = verdict.outcome
        if status == SENT:
            sent_at, sent_text = answered, text
        elif status == probe.RETRY:
            delay = backoff(attempts)
            if verdict.retry_after:
                delay = max(delay, verdict.retry_after)
            next_at = answered + dt.timedelta(seconds=delay)
            if states.get(mailing.id) == CANCELLED:
                status, error = CANCELLED, f"mailing cancelled; last error: {error}"
            elif next_at >= mailing.end_at:
                status, error = EXPIRED, f"mailing ended before a retry; last error: {error}"
            else:
                status = PENDING
        updates.append((status, sent_at, sent_text, error[:500], next_at, attempts, row.id, OWNER))
        outcome = "retry" if status == PENDING else status
        sent_request = gateway is not None and verdict.outcome != EXPIRED
        logged.append(("attempt" if sent_request else "decision", {
            "mailing_id": row.mailing_id, "message_id": row.id, "client_id": row.client_id,
            "outcome": outcome, "http_status": verdict.http_status, "latency_ms": verdict.latency_ms,
            "error": error[:200] or None,
            "request": {"method": "POST", "url": f"{gateway.url}/send/{row.id}",
                        "authorization": f"Bearer {gateway.masked_token}",
                        "json": {"id": row.id, "phone": int(row.phone), "text": text}} if sent_request else None}))
        journal.append((row.id, row.mailing_id, row.client_id, answered, outcome, verdict.http_status,
                        verdict.latency_ms, error[:500], OWNER))
    sql = (f"UPDATE message SET status = {p}, sent_at = {p}, text = COALESCE({p}, text), "
           f"last_error = {p}, next_attempt_at = COALESCE({p}, next_attempt_at), attempts = {p}, "
           f"sending_since = NULL, lease_owner = NULL, lease_until = NULL "
           f"WHERE id = {p} AND lease_owner = {p}")
    journal_sql = (f"INSERT INTO attempt (message_id, mailing_id, client_id, at, outcome, http_status, "
                   f"latency_ms, error, owner) VALUES ({', '.join([p] * 9)})")
    with db.atomic():
        # Raw executemany: building these statements with peewee cost a tenth of the consumer's CPU.
        cursor = db.cursor()
        cursor.executemany(sql, updates)
        cursor.executemany(journal_sql, journal)
        refused = [v for _, v, _ in results if v.http_status == 401]
        if refused:
            pause_gateway(refused[0])
        for mailing_id in {row.mailing_id for row, v, _ in results if v.outcome == FAILED}:
            pause_if_failing(mailing_id)
    events(logged)
    return [(j[4], j[6]) for j in journal]


_pause_seen = [0.0, None]  # (monotonic time read, pause) : read at most once a second per process


def gateway_paused():
    """Whether sending is paused for everyone (after a 401), read from the database once a second."""
    if time.monotonic() - _pause_seen[0] > 1.0:
        _pause_seen[:] = [time.monotonic(), models.gateway_pause()]
    pause = _pause_seen[1]
    return pause is not None and pause[0] > utcnow()


def pause_gateway(verdict, settings=SETTINGS):
    until = utcnow() + dt.timedelta(seconds=settings.auth_pause)
    reason = (f"the gateway refused the token ({verdict.error}); sending is paused "
              f"for everyone: set a valid PROBE_TOKEN and restart the consumer")
    models.set_gateway_pause(until, reason)
    _pause_seen[:] = [time.monotonic(), (until, reason)]


def pause_if_failing(mailing_id, settings=SETTINGS):
    """Pause a mailing whose recent attempts mostly failed for good (the gateway refuses its text or
    its numbers): retrying the rest would only burn them."""
    since = Mailing.select(Mailing.updated_at).where(Mailing.id == mailing_id)  # e.g. its last resume
    recent = (Attempt.select(Attempt.outcome, Attempt.error)
              .where((Attempt.mailing_id == mailing_id) & (Attempt.at >= since))
              .order_by(Attempt.id.desc()).limit(settings.fail_pause_window))
    outcomes = list(recent.tuples())
    failed = [error for outcome, error in outcomes if outcome == FAILED]
    if len(failed) < settings.fail_pause_min or len(failed) < settings.fail_pause_ratio * len(outcomes):
        return False
    reason = (f"paused automatically: {len(failed)} of its last {len(outcomes)} attempts failed "
              f"for good (last: {failed[0][:120]})")
    updated = (Mailing.update(state=PAUSED, state_reason=reason, updated_at=utcnow())
               .where((Mailing.id == mailing_id) & (Mailing.state == RUNNING)).execute())
    return bool(updated)


# ---------------------------------------------------------------------------------------------------
# The dispatch loop


def load_mailings(ids):
    return {m.id: m for m in Mailing.select().where(Mailing.id.in_(list(ids)))}


def split_by_window(rows, mailings, now):
    """Messages whose client is inside the mailing's window now, and {open_at: ids} for the rest."""
    ready, later, expired = [], {}, []
    for row in rows:
        mailing = mailings[row.mailing_id]
        window = (mailing.window_start, mailing.window_end) if mailing.window_start is not None else None
        if window is None:
            ready.append(row)
            continue
        tz = row.tz or models.operator_zone()
        opens = models.next_window_open(now, tz, window)
        if opens <= now:
            ready.append(row)
        elif opens >= mailing.end_at:
            expired.append(row)
        else:
            later.setdefault(opens, []).append(row.id)
    return ready, later, expired


def attempt(gateway, row, text, end_at, settings=SETTINGS):
    # The last check before the wire: nothing reaches the gateway at or after the mailing's end.
    if utcnow() >= end_at - dt.timedelta(seconds=settings.end_guard):
        return probe.Verdict(EXPIRED, error="mailing ended before this attempt", at=time.time())
    return gateway.send(row.id, row.phone, text)


def dispatch(gateway, settings=SETTINGS, budget=None):
    """Send due messages until none are due or the time budget is spent. Returns the count settled."""
    deadline = time.monotonic() + (settings.budget if budget is None else budget)

    def refill():
        return claim(settings.batch) if time.monotonic() < deadline else []

    rows = refill()
    if not rows:
        return 0
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="send") as pool:
        return send_batch(rows, gateway, pool, settings, refill)


def mailing_states(ids):
    # Raw SQL: this runs at every send step, where peewee's query building showed in profiles.
    ids = list(ids)
    sql = f"SELECT id, state FROM mailing WHERE id IN ({', '.join([db.param] * len(ids))})"
    return dict(db.execute_sql(sql, ids).fetchall())


def send_batch(rows, gateway, pool, settings=SETTINGS, refill=None):
    """Send claimed messages with `concurrency` requests in flight; with `refill`, claim the next batch
    as soon as this one is all handed out, so the wire never drains between batches. Each step is one
    transaction that settles the answers come so far and marks the next group as on the wire, so after
    a crash only what was really in flight is in doubt."""
    mailings, queue, futures, results, settled = {}, deque(), {}, [], 0

    def admit(rows):
        now = utcnow()
        mailings.update(load_mailings({r.mailing_id for r in rows}))  # fresh text and end
        ready, later, expired = split_by_window(rows, mailings, now)
        if later:
            defer(later, now)
        results.extend((r, probe.Verdict(EXPIRED, error="the client's window opens after the mailing ends",
                                         at=time.time()), None) for r in expired)
        queue.extend(ready)

    admit(rows)
    top_up = max(1, settings.concurrency // 4)
    while queue or futures or results:
        if refill is not None and not queue:
            more = refill()
            if more:
                admit(more)
            else:
                refill = None  # nothing more due now: finish what is on the wire
        free = settings.concurrency - len(futures)
        take = min(free, len(queue)) if queue and (free >= top_up or free >= len(queue)) else 0
        if take or (results and (len(results) >= top_up or not queue)):
            group = [queue.popleft() for _ in range(take)]
            observed = []
            with writing():
                states = mailing_states(mailings)
                if results:
                    observed = settle(results, mailings, states, gateway)
                if gateway_paused():
                    states = dict.fromkeys(states, PAUSED)  # hand everything unsent back
                if any(state != RUNNING for state in states.values()):
                    # Paused or cancelled meanwhile: hand what is unsent back to the database.
                    stopped = [r for r in [*group, *queue] if states.get(r.mailing_id) != RUNNING]
                    release([r.id for r in stopped])
                    group = [r for r in group if states.get(r.mailing_id) == RUNNING]
                    queue = deque(r for r in queue if states.get(r.mailing_id) == RUNNING)
                if group:
                    mark_sending([r.id for r in group], utcnow())
            metrics.observe_attempts(observed)  # after the commit
            settled, results = settled + len(results), []
            for r in group:
                mailing = mailings[r.mailing_id]
                futures[pool.submit(attempt, gateway, r, mailing.text, mailing.end_at)] = (r, mailing.text)
        if not futures:
            continue
        done, _ = wait(futures, timeout=0.05, return_when=FIRST_COMPLETED)
        for future in done:
            row, text = futures.pop(future)
            results.append((row, future.result(), text))
    return settled


# ---------------------------------------------------------------------------------------------------
# Liveness and recovery


def beat(gateway_description=""):
    now = utcnow()
    (Heartbeat.insert(owner=OWNER, host=socket.gethostname(), pid=os.getpid(),
                      gateway=gateway_description, started_at=now, beat_at=now)
     .on_conflict(conflict_target=[Heartbeat.owner],
                  update={Heartbeat.beat_at: now, Heartbeat.gateway: gateway_description})
     .execute())


def forget_self():
    Heartbeat.delete().where(Heartbeat.owner == OWNER).execute()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_owners(now=None):
    now = now or utcnow()
    owners = [o for (o,) in Message.select(Message.lease_owner).distinct()
              .where(Message.lease_owner.is_null(False)).tuples()]
    beats = {h.owner: h for h in Heartbeat.select()}
    host = socket.gethostname()
    dead = []
    for owner in owners:
        if owner == OWNER:
            continue
        beat_row = beats.get(owner)
        if beat_row is None or beat_row.beat_at < now - HEARTBEAT_STALE:
            dead.append(owner)
        elif beat_row.host == host and not _pid_alive(beat_row.pid):
            dead.append(owner)
    return dead


def recover(now=None):
    """Release what dead consumers had claimed; what they may have put on the wire is `unknown`."""
    now = now or utcnow()
    owners = set(dead_owners(now))
    with writing():
        # Only leased messages are read, through the partial index on lease_owner.
        leased = (Message.select(Message.id, Message.lease_owner, Message.lease_until, Message.sending_since)
                  .where(Message.lease_owner.is_null(False) & (Message.status == PENDING)).tuples())
        wire, idle = [], []
        for msg_id, owner, until, sending_since in leased:
            if owner in owners or until < now:
                (wire if sending_since is not None else idle).append(msg_id)
        for msg_id in wire:
            event("outcome unknown: its consumer died during the send; not re-sent", message_id=msg_id)
        for part in chunks(wire):
            Attempt.insert_from(
                Message.select(Message.id, Message.mailing, Message.client_id, pw.Value(now),
                               pw.Value(UNKNOWN), pw.Value(
                                   "the consumer stopped while this was being sent; "
                                   "not re-sent to avoid a duplicate"))
                .where(Message.id.in_(part)),
                [Attempt.message, Attempt.mailing_id, Attempt.client_id, Attempt.at, Attempt.outcome,
                 Attempt.error]).execute()
            (Message.update(status=UNKNOWN, lease_owner=None, lease_until=None,
                            last_error="outcome unknown: the consumer stopped during the send; "
                                       "not re-sent to avoid a duplicate")
             .where(Message.id.in_(part)).execute())
        release(idle, owner=None)
        if owners:
            Heartbeat.delete().where(Heartbeat.owner.in_(list(owners))).execute()
        (Heartbeat.delete().where((Heartbeat.beat_at < now - HEARTBEAT_STALE * 4)
                                  & (Heartbeat.owner != OWNER)).execute())
    if wire:
        metrics.observe_attempts([(UNKNOWN, None)] * len(wire))
    return {"unknown": len(wire), "released": len(idle), "dead_owners": len(owners)}


def due_mailings(now=None):
    """Ids of mailings to start and to finish now."""
    now = now or utcnow()
    to_start = [i for (i,) in Mailing.select(Mailing.id).where(
        (Mailing.state == models.SCHEDULED) & (Mailing.start_at <= now)).tuples()]
    to_finish = [i for (i,) in Mailing.select(Mailing.id).where(
        Mailing.state.in_([models.SCHEDULED, RUNNING, PAUSED]) & (Mailing.end_at <= now)).tuples()]
    return to_start, to_finish


__all__ = ["claim", "dispatch", "recover", "beat", "due_soon", "due_mailings", "OWNER", "SETTINGS",
           "FAILED", "SENT"]
