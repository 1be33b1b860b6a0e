"""Claim, send and settle messages in batches: the database decides what is left to send.

A dispatcher claims a batch of due messages with a lease naming this consumer, and sends them through
a thread pool. A POST leaves only for a message that one conditional statement has just marked as on
the wire: still pending, still leased to this consumer, of a mailing still running and not about to
end. That statement reads the phone, and the same transaction the text and the end, so whatever an
operator changed before it is what goes out. Answers are settled in bulk, fenced by the lease, and a
settle that storage refuses is retried until it is taken: an answer once received is never lost.

Liveness needs no clock comparison: a consumer counts its heartbeats, and another takes it for dead
only after watching the count stand still for HEARTBEAT_STALE on its own monotonic clock (or, in the
same kernel and PID namespace, finding its process gone). What a dead consumer had on the wire is in
doubt, and MAILER_IN_DOUBT decides: `hold` makes it `unknown` (a late answer from a consumer that was
only frozen still settles it), `retry` sends it again with the same msgId.
"""
import contextlib
import datetime as dt
import logging
import os
import random
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
                    Heartbeat, Mailing, Message, db, utcnow)
from tasks import metrics, probe
from tasks.logs import event, events

log = logging.getLogger("mailer.dispatcher")

OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
HEARTBEAT_EVERY = 2.0
HEARTBEAT_STALE = dt.timedelta(seconds=15)
LEASE = dt.timedelta(minutes=10)  # informative only: takeovers follow heartbeats, not this clock
IN_CHUNKS = 500  # ids per IN (...) list
# A marked message must be on its way within this many seconds or not at all (it is unmarked and goes
# back): "on the wire" stays a matter of moments, so a pause, a cancel or a takeover is not overtaken
# by a consumer that was frozen holding marks.
MAX_WIRE_WAIT = 2.0
HOLD, RETRY_IN_DOUBT = "hold", "retry"
IN_DOUBT_POLICIES = (HOLD, RETRY_IN_DOUBT)

# What a failing database raises (locked past the busy timeout, disk full, connection lost): the work
# waits for storage to come back instead of dying with it.
STORAGE_ERRORS = (pw.OperationalError, pw.InterfaceError, pw.InternalError)


@dataclass
class Settings:
    batch: int = int(os.environ.get("MAILER_BATCH", "256"))
    concurrency: int = int(os.environ.get("MAILER_CONCURRENCY", "32"))
    budget: float = float(os.environ.get("MAILER_DISPATCH_BUDGET", "5"))
    retry_base: float = float(os.environ.get("MAILER_RETRY_BASE", "1"))
    retry_cap: float = float(os.environ.get("MAILER_RETRY_CAP", "300"))
    # No attempt starts this close to the end: a request needs a moment to reach the gateway.
    end_guard: float = float(os.environ.get("MAILER_END_GUARD", "0.5"))
    # After a 401 or a redirect nobody sends for this long; then one batch finds out whether the
    # gateway takes us again.
    auth_pause: float = float(os.environ.get("MAILER_AUTH_PAUSE", "60"))
    # A mailing pauses itself when this share of its last attempts failed for good ...
    fail_pause_ratio: float = float(os.environ.get("MAILER_FAIL_PAUSE_RATIO", "0.5"))
    # ... counted over this many attempts, once at least this many failed.
    fail_pause_window: int = 100
    fail_pause_min: int = int(os.environ.get("MAILER_FAIL_PAUSE_MIN", "20"))
    # What an attempt in doubt becomes: `hold` (unknown, resent only by the operator) or `retry`.
    in_doubt: str = os.environ.get("MAILER_IN_DOUBT", HOLD).strip().lower()


SETTINGS = Settings()


def check_settings(settings=SETTINGS):
    if settings.in_doubt not in IN_DOUBT_POLICIES:
        raise models.ValidationError({"MAILER_IN_DOUBT": f"must be hold or retry; got {settings.in_doubt!r}"})
    return settings


@dataclass
class Claimed:
    id: int
    mailing_id: int
    client_id: int | None
    attempts: int
    tz: str | None
    in_doubt: bool


@dataclass
class OnWire:
    """A message marked as on the wire, with what the mark read: where and what to send, and the
    monotonic instant after which its request must not start."""
    row: Claimed
    phone: str
    text: str
    not_after: float


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


def placeholders(n):
    return ", ".join([db.param] * n)


def backoff(attempts, settings=SETTINGS):
    """Exponential backoff with equal jitter: half fixed, half random."""
    delay = min(settings.retry_cap, settings.retry_base * 2 ** max(0, attempts - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def is_postgres():
    return not isinstance(db.obj, pw.SqliteDatabase)


db_clock = models.db_now


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
    lock = " FOR UPDATE SKIP LOCKED" if is_postgres() else ""
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
        query = (Message.select(Message.id, Message.mailing, Message.client_id, Message.attempts,
                                models.Client.tz, Message.in_doubt)
                 .join(models.Client, pw.JOIN.LEFT_OUTER, on=(models.Client.id == Message.client_id))
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
# Writes of a send step: every one fenced by the lease, one statement per group or one executemany.


@dataclass
class Live:
    """A mailing as the current step reads it."""
    state: str
    text: str
    end_at: dt.datetime


def live_mailings(ids):
    """The state, text and end of these mailings, read inside the step's transaction. On PostgreSQL
    the rows are share-locked until it ends, so an edit waits for the marks made with the old values."""
    query = (Mailing.select(Mailing.id, Mailing.state, Mailing.text, Mailing.end_at)
             .where(Mailing.id.in_(list(ids))))
    if is_postgres():
        query = query.for_update("FOR SHARE")
    return {mid: Live(state, text, end_at) for mid, state, text, end_at in query.tuples()}


def release(ids, owner=OWNER):
    """Hand leased, unsent messages back; with owner=None whoever holds them."""
    for part in chunks(ids):
        cond = Message.id.in_(part) & Message.sending_since.is_null()
        if owner is not None:
            cond &= Message.lease_owner == owner
        Message.update(lease_owner=None, lease_until=None).where(cond).execute()


def mark_on_wire(rows, live, now, owner=OWNER):
    """Mark these messages as on the wire with the text they go with, only those still pending and
    leased to `owner`; returns {id: phone} for the rows marked, the phone read by the same
    statement."""
    marked = {}
    p = db.param
    by_mailing = {}
    for row in rows:
        by_mailing.setdefault(row.mailing_id, []).append(row.id)
    for mailing_id, ids in by_mailing.items():
        for part in chunks(ids):
            sql = (f"UPDATE message SET sending_since = {p}, attempts = attempts + 1, text = {p} "
                   f"WHERE id IN ({placeholders(len(part))}) AND lease_owner = {p} "
                   f"AND status = 'pending' AND sending_since IS NULL RETURNING id, phone")
            marked.update(db.execute_sql(sql, [now, live[mailing_id].text, *part, owner]).fetchall())
    return marked


def defer(groups, owner=OWNER):
    """groups: {next_open_utc: [ids]} for messages outside their client's window now."""
    for when, ids in groups.items():
        for part in chunks(ids):
            (Message.update(next_attempt_at=when, lease_owner=None, lease_until=None)
             .where(Message.id.in_(part) & (Message.lease_owner == owner)
                    & Message.sending_since.is_null()).execute())


def expire_unsent(rows, reason, owner=OWNER):
    """Messages that will never go: expired (unknown, where an earlier attempt was in doubt)."""
    for part in chunks([r.id for r in rows]):
        (Message.update(status=models.unsent_status(EXPIRED), last_error=reason, lease_owner=None,
                        lease_until=None)
         .where(Message.id.in_(part) & (Message.lease_owner == owner) & (Message.status == PENDING)
                & Message.sending_since.is_null()).execute())
    if rows:
        events([("decision", {"mailing_id": r.mailing_id, "message_id": r.id, "client_id": r.client_id,
                              "outcome": EXPIRED, "error": reason}) for r in rows])


def cancel_unsent(rows, owner=OWNER):
    for part in chunks([r.id for r in rows]):
        (Message.update(status=models.unsent_status(CANCELLED), last_error="mailing cancelled",
                        lease_owner=None, lease_until=None)
         .where(Message.id.in_(part) & (Message.lease_owner == owner) & (Message.status == PENDING)
                & Message.sending_since.is_null()).execute())


def next_status(row, verdict, live, answered, settings=SETTINGS):
    """(status, in_doubt, next_attempt_at, error) of a message after one answered attempt."""
    error = verdict.error
    in_doubt = bool(row.in_doubt) or verdict.outcome == probe.DOUBT
    if verdict.outcome == SENT:
        return SENT, in_doubt, None, ""
    if verdict.outcome == FAILED:
        return FAILED, in_doubt, None, error
    if verdict.outcome == probe.DOUBT and settings.in_doubt == HOLD:
        return UNKNOWN, True, None, f"{error}; held, not re-sent (MAILER_IN_DOUBT=hold)"
    delay = backoff(row.attempts + 1, settings)
    if verdict.retry_after:
        delay = max(delay, verdict.retry_after)
    next_at = answered + dt.timedelta(seconds=delay)
    final = UNKNOWN if in_doubt else None
    if live.state == CANCELLED:
        return final or CANCELLED, in_doubt, None, f"mailing cancelled; last error: {error}"
    if next_at >= live.end_at - dt.timedelta(seconds=settings.end_guard):
        return final or EXPIRED, in_doubt, None, f"mailing ended before a retry; last error: {error}"
    return PENDING, in_doubt, next_at, error


def settle(results, live, gateway=None, owner=OWNER, settings=SETTINGS):
    """Write answers in bulk. results: [(OnWire, Verdict)]. A message is updated only while this
    consumer still holds it (a late answer also settles a message a takeover made `unknown`); every
    attempt is journaled, because every one was really made."""
    p = db.param
    updates, journal, logged = [], [], []
    for wire, verdict in results:
        row = wire.row
        answered = dt.datetime.fromtimestamp(verdict.at or time.time(), models.UTC).replace(tzinfo=None)
        mailing = live.get(row.mailing_id) or Live(CANCELLED, "", dt.datetime.min)
        status, in_doubt, next_at, error = next_status(row, verdict, mailing, answered, settings)
        updates.append((status, answered if status == SENT else None, wire.text, error[:500], next_at,
                        in_doubt, row.id, owner))
        outcome = "retry" if status == PENDING else status
        logged.append(("attempt", {
            "mailing_id": row.mailing_id, "message_id": row.id, "client_id": row.client_id,
            "outcome": outcome, "http_status": verdict.http_status, "latency_ms": verdict.latency_ms,
            "error": error[:200] or None,
            "request": {"method": "POST", "url": f"{gateway.url}/send/{row.id}" if gateway else None,
                        "authorization": f"Bearer {gateway.masked_token}" if gateway else None,
                        "json": {"id": row.id, "phone": int(wire.phone), "text": wire.text}}}))
        journal.append((row.id, row.mailing_id, row.client_id, answered, outcome, verdict.http_status,
                        verdict.latency_ms, error[:500], owner))
    sql = (f"UPDATE message SET status = {p}, sent_at = {p}, text = {p}, last_error = {p}, "
           f"next_attempt_at = COALESCE({p}, next_attempt_at), in_doubt = {p}, "
           f"sending_since = NULL, lease_owner = NULL, lease_until = NULL "
           f"WHERE id = {p} AND lease_owner = {p} AND status IN ('pending', 'unknown') "
           f"AND sending_since IS NOT NULL")
    journal_sql = (f"INSERT INTO attempt (message_id, mailing_id, client_id, at, outcome, http_status, "
                   f"latency_ms, error, owner) VALUES ({placeholders(9)})")
    # Raw executemany: building these statements with peewee cost a tenth of the consumer's CPU.
    cursor = db.cursor()
    cursor.executemany(sql, updates)
    # A success is the truth even when this consumer no longer holds the message (taken over while it
    # was frozen, or resent by the operator): recorded, it will not be posted again, unless another
    # consumer already has it on the wire.
    late_sent = [u for u in updates if u[0] == SENT]
    if late_sent:
        cursor.executemany(
            f"UPDATE message SET status = 'sent', sent_at = {p}, text = {p}, last_error = '', "
            f"lease_owner = NULL, lease_until = NULL WHERE id = {p} "
            f"AND status IN ('pending', 'unknown') AND sending_since IS NULL",
            [(u[1], u[2], u[6]) for u in late_sent])
    cursor.executemany(journal_sql, journal)
    halted = [v for _, v in results if v.halt]
    if halted:
        pause_gateway(halted[0], settings)
    for mailing_id in {w.row.mailing_id for w, v in results if v.outcome == FAILED}:
        pause_if_failing(mailing_id, settings)
    return logged, [(j[4], j[6]) for j in journal]


_pause_seen = [0.0, None]  # (monotonic time read, pause) : read at most once a second per process


def gateway_paused():
    """Whether sending is paused for everyone (after a 401 or a redirect), read from the database
    once a second."""
    if time.monotonic() - _pause_seen[0] > 1.0:
        _pause_seen[:] = [time.monotonic(), models.gateway_pause()]
    pause = _pause_seen[1]
    return pause is not None and pause[0] > utcnow()


def pause_gateway(verdict, settings=SETTINGS):
    until = utcnow() + dt.timedelta(seconds=settings.auth_pause)
    if verdict.http_status == 401:
        reason = (f"the gateway refused the token ({verdict.error}); sending is paused "
                  f"for everyone: set a valid PROBE_TOKEN and restart the consumer")
    else:
        reason = f"the gateway answered with a redirect ({verdict.error}); sending is paused for everyone"
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


def split_by_window(rows, mailings, now):
    """Messages whose client is inside the mailing's window now, {open_at: ids} for those whose
    window opens later, and those whose window opens only after the end."""
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


def attempt(gateway, wire):
    # The last checks before the wire, on this process's monotonic clock, here and again just before
    # the request's first byte is written (after any connect): a consumer frozen, or a connect slow,
    # between the mark and the POST must not send after the end it read, nor long after an operator
    # may have paused, cancelled or resent.
    if time.monotonic() >= wire.not_after:
        return None
    return gateway.send(wire.row.id, wire.phone, wire.text, send_by=wire.not_after)


def dispatch(gateway, settings=SETTINGS, budget=None, stop=None):
    """Send due messages until none are due, the time budget is spent or `stop` is set. Returns the
    count settled."""
    deadline = time.monotonic() + (settings.budget if budget is None else budget)

    def refill():
        if stop is not None and stop.is_set():
            return []
        return claim(settings.batch) if time.monotonic() < deadline else []

    rows = refill()
    if not rows:
        return 0
    with ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="send") as pool:
        return send_batch(rows, gateway, pool, settings, refill, stop)


class Step:
    """What one transaction of the send loop has to write, and what it found."""

    def __init__(self):
        self.results = []   # (OnWire, Verdict) answered since the last step
        self.unsent = []    # (OnWire) marked but not posted: the end came first
        self.windows = {}   # {open_at: [ids]} to defer
        self.expired = []   # Claimed rows whose window opens after the end


def send_batch(rows, gateway, pool, settings=SETTINGS, refill=None, stop=None):
    """Send claimed messages with `concurrency` requests in flight; with `refill`, claim the next batch
    as soon as this one is all handed out, so the wire never drains between batches. Each step is one
    transaction that settles the answers come so far and marks the next group as on the wire; when
    storage refuses it, nothing new is marked and the same answers are offered again until it is
    taken."""
    queue, futures, settled = deque(), {}, 0
    pending = Step()
    mailings = {}
    trouble = 0  # consecutive failed steps

    def admit(rows):
        now = utcnow()
        missing = {r.mailing_id for r in rows} - set(mailings)
        if missing:
            mailings.update({m.id: m for m in Mailing.select().where(Mailing.id.in_(list(missing)))})
        ready, later, expired = split_by_window(rows, mailings, now)
        for when, ids in later.items():
            pending.windows.setdefault(when, []).extend(ids)
        pending.expired.extend(expired)
        queue.extend(ready)

    admit(rows)
    top_up = max(1, settings.concurrency // 4)
    while queue or futures or pending.results or pending.unsent or pending.windows or pending.expired:
        if stop is not None and stop.is_set() and queue:
            # Stopping: what is claimed but not on the wire goes back now, not after a takeover.
            with contextlib.suppress(*STORAGE_ERRORS), writing():
                release([r.id for r in queue])
            queue.clear()
        if refill is not None and not queue and not trouble:
            try:
                more = refill()
            except STORAGE_ERRORS as exc:
                log.warning("claiming failed (%s); finishing what is on the wire", exc)
                more = []
            if more:
                admit(more)
            else:
                refill = None  # nothing more due now: finish what is on the wire
        free = settings.concurrency - len(futures)
        take = min(free, len(queue)) if queue and (free >= top_up or free >= len(queue)) else 0
        writes = pending.results or pending.unsent or pending.windows or pending.expired
        if take or (writes and (len(pending.results) >= top_up or not queue or trouble)):
            group = [queue.popleft() for _ in range(take)]
            try:
                marked, kept, logged, observed = run_step(pending, group, queue, gateway, settings)
            except STORAGE_ERRORS as exc:
                queue.extendleft(reversed(group))
                trouble += 1
                if trouble == 1 or trouble % 20 == 0:
                    log.warning("storage refused a send step (%s); %d answers kept, retrying", exc,
                                len(pending.results))
                _wait_some(futures, pending, min(1.0, 0.05 * 2 ** min(trouble, 5)))
                continue
            if trouble:
                log.warning("storage is back after %d refused steps", trouble)
            trouble = 0
            events(logged)
            metrics.observe_attempts(observed)  # after the commit
            settled += len(pending.results)
            pending = Step()
            queue = kept
            for wire in marked:
                futures[pool.submit(attempt, gateway, wire)] = wire
        if futures:
            _wait_some(futures, pending, 0.05)
        elif trouble:
            time.sleep(0.05)
    return settled


def _wait_some(futures, pending, timeout):
    if not futures:
        time.sleep(timeout)
        return
    done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
    for future in done:
        wire = futures.pop(future)
        verdict = future.result()
        if verdict is None:
            pending.unsent.append(wire)
        else:
            pending.results.append((wire, verdict))


def run_step(pending, group, queue, gateway, settings=SETTINGS):
    """One transaction: settle what came back, then mark `group` as on the wire. Returns the marked
    messages to post, the queue left (rows of mailings no longer running are handed back), the log
    records and the metrics to emit after the commit."""
    wires = [w for w, _ in pending.results] + pending.unsent
    ids = ({r.mailing_id for r in group} | {r.mailing_id for r in queue}
           | {w.row.mailing_id for w in wires} | {r.mailing_id for r in pending.expired})
    with writing():
        live = live_mailings(ids)
        now = db_clock()
        logged, observed = [], []
        if pending.results:
            logged, observed = settle(pending.results, live, gateway, settings=settings)
        guard = dt.timedelta(seconds=settings.end_guard)
        if pending.unsent:
            # Marked, never posted: the end it read came while this consumer waited (it may have been
            # frozen). Unmarked, it expires, or goes back to be sent if the end was moved meanwhile.
            # A takeover or the overdue rule may have called it in doubt meanwhile: it was not.
            for doubt in (False, True):
                ids = [w.row.id for w in pending.unsent if bool(w.row.in_doubt) == doubt]
                for part in chunks(ids):
                    (Message.update(sending_since=None, attempts=Message.attempts - 1, text=None,
                                    status=PENDING, in_doubt=doubt)
                     .where(Message.id.in_(part) & (Message.lease_owner == OWNER)
                            & Message.status.in_([PENDING, UNKNOWN]) & Message.sending_since.is_null(False))
                     .execute())
            rows = [w.row for w in pending.unsent]
            cancelled = [r for r in rows if r.mailing_id not in live or live[r.mailing_id].state == CANCELLED]
            ended = [r for r in rows if r not in cancelled and now >= live[r.mailing_id].end_at - guard]
            # The cancel that came meanwhile could not touch them while they were marked: it does now.
            cancel_unsent(cancelled)
            expire_unsent(ended, "mailing ended before this attempt")
            release([r.id for r in rows if r not in cancelled and r not in ended])
        if pending.windows:
            defer(pending.windows)
        if pending.expired:
            expire_unsent(pending.expired, "the client's window opens after the mailing ends")
        halted = gateway_paused()

        def sendable(row):
            mailing = live.get(row.mailing_id)
            return not halted and mailing is not None and mailing.state == RUNNING

        ended = [r for r in group if sendable(r) and now >= live[r.mailing_id].end_at - guard]
        expire_unsent(ended, "mailing ended before this attempt")
        go = [r for r in group if sendable(r) and now < live[r.mailing_id].end_at - guard]
        stopped = [r for r in [*group, *queue] if not sendable(r)]
        kept = deque(r for r in queue if sendable(r))
        release([r.id for r in stopped])
        phones = mark_on_wire(go, live, now) if go else {}
        lost = [r.id for r in go if r.id not in phones]  # cancelled, deleted or taken meanwhile
        release(lost)
        started = time.monotonic()
        marked = []
        for row in go:
            if row.id in phones:
                mailing = live[row.mailing_id]
                left = min((mailing.end_at - guard - now).total_seconds(), MAX_WIRE_WAIT)
                marked.append(OnWire(row, phones[row.id], mailing.text, started + left))
    return marked, kept, logged, observed


# ---------------------------------------------------------------------------------------------------
# Liveness and recovery


def _node():
    """This kernel's boot and this process's PID namespace: where a PID means the same process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()
        return f"{boot}/{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def _proc_start(pid):
    """The start time of process `pid` in clock ticks (None if there is no such process): with the
    PID, it names one process even after the PID is reused."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent: dead all the same
            return None
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


NODE = _node()
PROC_START = _proc_start(os.getpid())
_beaten = [False]


def beat(gateway_description=""):
    """Count a heartbeat. Its row gone means others took this consumer for dead (it could not beat
    for a while) and took over its claims: say so, and come back."""
    now = utcnow()
    updated = (Heartbeat.update(seq=Heartbeat.seq + 1, beat_at=now, gateway=gateway_description)
               .where(Heartbeat.owner == OWNER).execute())
    if updated:
        _beaten[0] = True
        return
    if _beaten[0]:
        log.warning("this consumer was taken for dead while it could not beat; what it held was "
                    "taken over (its late answers still settle what it had on the wire)")
    (Heartbeat.insert(owner=OWNER, host=socket.gethostname(), pid=os.getpid(), node=NODE,
                      proc_start=PROC_START, seq=1, gateway=gateway_description, started_at=now,
                      beat_at=now)
     .on_conflict(conflict_target=[Heartbeat.owner],
                  update={Heartbeat.beat_at: now, Heartbeat.gateway: gateway_description})
     .execute())
    _beaten[0] = True


def forget_self():
    Heartbeat.delete().where(Heartbeat.owner == OWNER).execute()


class Watch:
    """Who is dead, judged by watching: a consumer whose heartbeat count has not moved for
    HEARTBEAT_STALE of this process's monotonic clock, or whose process is gone from a kernel and
    PID namespace this process shares. A watcher that has just started knows nobody is dead yet."""

    def __init__(self, stale=HEARTBEAT_STALE):
        self.stale = stale.total_seconds()
        self.seen = {}  # owner -> (seq or None, monotonic time it was first seen so)
        self.lock = threading.Lock()  # the watch thread and the sweep both look

    def dead(self, owners, beats, clock=time.monotonic):
        with self.lock:
            return self._dead(owners, beats, clock())

    def _dead(self, owners, beats, now):
        dead = []
        for owner in owners:
            if owner == OWNER:
                continue
            row = beats.get(owner)
            if row is not None and NODE and row.node == NODE and row.proc_start is not None:
                if _proc_start(row.pid) != row.proc_start:
                    dead.append(owner)
                    continue
            seq = row.seq if row is not None else None
            last = self.seen.get(owner)
            if last is None or last[0] != seq:
                self.seen[owner] = (seq, now)
            elif now - last[1] >= self.stale:
                dead.append(owner)
        for gone in set(self.seen) - set(owners):
            del self.seen[gone]
        return dead


WATCH = Watch()


def dead_owners(watch=WATCH):
    holders = {o for (o,) in Message.select(Message.lease_owner).distinct()
               .where(Message.lease_owner.is_null(False) & (Message.status == PENDING)).tuples()}
    beats = {h.owner: h for h in Heartbeat.select()}
    return watch.dead(holders | set(beats), beats)


def recover(settings=SETTINGS, watch=WATCH):
    """Take over from dead consumers: release what they had claimed; what they had on the wire is in
    doubt (held as `unknown`, its lease kept so a late answer still settles it; or, with
    MAILER_IN_DOUBT=retry, handed back to be sent again with the same msgId)."""
    owners = dead_owners(watch)
    if not owners:
        return {"unknown": 0, "released": 0, "retried": 0, "dead_owners": 0}
    now = utcnow()
    reason = "in doubt: the consumer stopped while this was on the wire"
    hold = settings.in_doubt == HOLD
    with writing():
        leased = (Message.select(Message.id, Message.mailing, Message.client_id, Message.sending_since)
                  .where(Message.lease_owner.in_(owners) & (Message.status == PENDING)).tuples())
        wire, idle = [], []
        for msg_id, mailing_id, client_id, sending_since in leased:
            (wire if sending_since is not None else idle).append((msg_id, mailing_id, client_id))
        # No journal row: whether the attempt was made is exactly what is not known; the message
        # says so, and the attempt is journaled if its consumer comes back with the answer.
        for part in chunks(wire):
            ids = [w[0] for w in part]
            if hold:
                (Message.update(status=UNKNOWN, in_doubt=True,
                                last_error=f"{reason}; held, not re-sent (MAILER_IN_DOUBT=hold)")
                 .where(Message.id.in_(ids) & Message.lease_owner.in_(owners)).execute())
            else:
                (Message.update(in_doubt=True, sending_since=None, lease_owner=None, lease_until=None,
                                next_attempt_at=now, last_error=f"{reason}; sent again (MAILER_IN_DOUBT=retry)")
                 .where(Message.id.in_(ids) & Message.lease_owner.in_(owners)).execute())
        release([i[0] for i in idle], owner=None)
        Heartbeat.delete().where(Heartbeat.owner.in_(owners)).execute()
    for msg_id, mailing_id, client_id in wire:
        event(f"{reason}; " + ("held as unknown" if hold else "sent again"), mailing_id=mailing_id,
              message_id=msg_id, client_id=client_id)
    if wire:
        metrics.observe_attempts([(UNKNOWN if hold else "retry", None)] * len(wire))
    return {"unknown": len(wire) if hold else 0, "retried": 0 if hold else len(wire),
            "released": len(idle), "dead_owners": len(owners)}


def settle_overdue(settings=SETTINGS, read_timeout=None, now=None):
    """Messages still on the wire of a consumer that has not answered for them by the end of their
    mailing plus the read timeout (it is frozen, or cut off from storage) are in doubt now: every
    message is final by then. Their lease stays, so a late answer from that consumer still settles
    them; nothing is posted again."""
    read_timeout = read_timeout if read_timeout is not None else float(os.environ.get("MAILER_READ_TIMEOUT", "10"))
    now = now or db_clock()
    ended = Mailing.select(Mailing.id).where(Mailing.end_at < now - dt.timedelta(seconds=read_timeout))
    with writing():
        return (Message.update(status=UNKNOWN, in_doubt=True,
                               last_error="in doubt: no answer came by the end plus the read timeout")
                .where(Message.lease_owner.is_null(False) & (Message.status == PENDING)
                       & Message.sending_since.is_null(False) & Message.mailing.in_(ended))
                .execute())


def due_mailings(now=None):
    """Ids of mailings to start and to finish now."""
    now = now or utcnow()
    to_start = [i for (i,) in Mailing.select(Mailing.id).where(
        (Mailing.state == models.SCHEDULED) & (Mailing.start_at <= now)).tuples()]
    to_finish = [i for (i,) in Mailing.select(Mailing.id).where(
        Mailing.state.in_([models.SCHEDULED, RUNNING, PAUSED]) & (Mailing.end_at <= now)).tuples()]
    return to_start, to_finish


__all__ = ["claim", "dispatch", "recover", "settle_overdue", "beat", "due_soon", "due_mailings", "OWNER", "SETTINGS",
           "FAILED", "SENT", "STORAGE_ERRORS"]
