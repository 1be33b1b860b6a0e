"""Claim, send and settle messages in batches: the database decides what is left to send.

A dispatcher claims a batch of due messages with a lease naming this consumer, and sends them through
a thread pool. A POST leaves only for a message that one conditional statement has just marked as on
the wire: still pending, still leased to this consumer, of a mailing still running and not about to
end. That statement reads the phone, and the same transaction the text and the end, so whatever an
operator changed before it is what goes out. Answers are settled in bulk, fenced by the lease, and a
settle that storage refuses is retried until it is taken: an answer once received is never lost.
What each answer makes of a message is the delivery policy's call (domain.delivery).
"""
import contextlib
import datetime as dt
import logging
import random
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass

import peewee as pw

from domain import settings as _settings
from domain import rates, segments, states, templates
from domain.delivery import next_status, split_by_window
from domain.times import UTC, nap, operator_zone, utcnow
from domain.vocabulary import CANCELLED, EXPIRED, FAILED, PENDING, RETRY, RUNNING, SENT, SUPPRESSED, UNKNOWN
from engine import OWNER, pacing
from engine.storage import STORAGE_ERRORS, chunks, db_clock, is_postgres, placeholders, writing
from models import Client, Mailing, Message, OptOut, db
from ops import metrics
from ops.logs import events

log = logging.getLogger("mailer.dispatcher")


LEASE = dt.timedelta(minutes=10)  # informative only: takeovers follow heartbeats, not this clock

# A marked message must be on its way within this many seconds or not at all (it is unmarked and goes
# back): "on the wire" stays a matter of moments, so a pause, a cancel or a takeover is not overtaken
# by a consumer that was frozen holding marks.
MAX_WIRE_WAIT = 2.0
HOLD, RETRY_IN_DOUBT = "hold", "retry"


@dataclass
class Claimed:
    id: int
    mailing_id: int
    client_id: int | None
    attempts: int
    tz: str | None
    in_doubt: bool
    operator: str | None = None  # its client's operator code (a deleted client's: its phone's)


@dataclass
class OnWire:
    """A message marked as on the wire, with what the mark read: where and what to send, and the
    monotonic instant after which its request must not start."""
    row: Claimed
    phone: str
    text: str
    not_after: float


def running_mailings(now):
    return [i for (i,) in Mailing.select(Mailing.id)
            .where((Mailing.state == RUNNING) & (Mailing.end_at > now)).tuples()]


def claim(limit, now=None, owner=OWNER):
    """Lease up to `limit` due messages of running mailings to `owner`; returns them. Due by the
    database's clock (on PostgreSQL the server's: a consumer whose own clock is wrong takes nothing
    early). Each running mailing is read through its (mailing, status, next_attempt_at) index, in a
    random order so no mailing starves another."""
    now = now or db_clock()
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
                                Client.tz, Message.in_doubt,
                                pw.fn.COALESCE(Client.operator, pw.fn.SUBSTR(Message.phone, 2, 3)))
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
    pause = states.gateway_pause(now)
    return max(min(firsts), pause[0]) if pause else min(firsts)


@dataclass
class Live:
    """A mailing as the current step reads it."""
    state: str
    text: str  # what every client gets; a personal text's template as saved
    end_at: dt.datetime
    template: templates.Template | None = None  # a personal text's, rendered per client at the mark


def live_mailings(ids):
    """The state, text and end of these mailings, read inside the step's transaction. On PostgreSQL
    the rows are share-locked until it ends, so an edit waits for the marks made with the old values."""
    query = (Mailing.select(Mailing.id, Mailing.state, Mailing.text, Mailing.end_at)
             .where(Mailing.id.in_(list(ids))))
    if is_postgres():
        query = query.for_update("FOR SHARE")
    live = {}
    for mid, state, text, end_at in query.tuples():
        template = templates.compile_text(text)  # cached: the same few texts at every step
        live[mid] = (Live(state, text, end_at, template) if template.personal
                     else Live(state, template.static, end_at))
    return live


def release(ids, owner=OWNER):
    """Hand leased, unsent messages back; with owner=None whoever holds them."""
    for part in chunks(ids):
        cond = Message.id.in_(part) & Message.sending_since.is_null()
        if owner is not None:
            cond &= Message.lease_owner == owner
        Message.update(lease_owner=None, lease_until=None).where(cond).execute()


# A personal text's mark also reads the client's name and attributes, in the same statement as the
# phone: what goes is what the client was at the mark.
CLIENT_VALUES = (", (SELECT name FROM client WHERE client.id = message.client_id)"
                 ", (SELECT attrs FROM client WHERE client.id = message.client_id)")


def mark_on_wire(rows, live, now, owner=OWNER):
    """Mark these messages as on the wire with the text they go with, only those still pending and
    leased to `owner`; returns ({id: phone}, {id: text}) for the rows marked, the phone read by the
    same statement; texts only of personal mailings' messages, rendered for each client from what the
    statement read and recorded in the same transaction (one executemany)."""
    marked, texts = {}, {}
    p = db.param
    by_mailing = {}
    for row in rows:
        by_mailing.setdefault(row.mailing_id, []).append(row.id)
    for mailing_id, ids in by_mailing.items():
        mailing = live[mailing_id]
        for part in chunks(ids):
            sql = (f"UPDATE message SET sending_since = {p}, attempts = attempts + 1, text = {p} "
                   f"WHERE id IN ({placeholders(len(part))}) AND lease_owner = {p} "
                   f"AND status = 'pending' AND sending_since IS NULL RETURNING id, phone")
            params = [now, mailing.text, *part, owner]
            if mailing.template is None:
                marked.update(db.execute_sql(sql, params).fetchall())
                continue
            for msg_id, phone, name, attrs in db.execute_sql(sql + CLIENT_VALUES, params).fetchall():
                marked[msg_id] = phone
                texts[msg_id] = mailing.template.render(name, attrs)
    if texts:
        db.cursor().executemany(f"UPDATE message SET text = {p} WHERE id = {p}",
                                [(text, msg_id) for msg_id, text in texts.items()])
    return marked, texts


def defer(groups, owner=OWNER):
    """groups: {next_open_utc: [ids]} for messages outside their client's window now."""
    for when, ids in groups.items():
        for part in chunks(ids):
            (Message.update(next_attempt_at=when, lease_owner=None, lease_until=None)
             .where(Message.id.in_(part) & (Message.lease_owner == owner)
                    & Message.sending_since.is_null()).execute())


def close_held(rows, status, reason, owner=OWNER):
    """Held messages that will never go (their mailing ended or was cancelled, or their window opens
    after the end): closed by the one rule (domain.states.close_unsent), fenced by the lease."""
    for part in chunks([r.id for r in rows]):
        states.close_unsent(Message.id.in_(part) & (Message.lease_owner == owner), status, reason)
    if rows:
        events([("decision", {"mailing_id": r.mailing_id, "message_id": r.id, "client_id": r.client_id,
                              "outcome": status, "error": reason}) for r in rows])


def settle(results, live, gateway=None, owner=OWNER, settings=None):
    """Write answers in bulk. results: [(OnWire, Verdict)]. A message is updated only while this
    consumer still holds it (a late answer also settles a message a takeover made `unknown`); every
    attempt is journaled, because every one was really made. Returns the log records and the
    metrics to emit after the commit."""
    settings = settings or _settings.current()
    updates, journal, logged = [], [], []
    for wire, verdict in results:
        update, entry = _settled_row(wire, verdict, live, owner, settings)
        updates.append(update)
        journal.append(entry)
        logged.append(_attempt_record(wire, verdict, entry, gateway))
    _write_settled(updates, journal)
    _react_to_failures(results, settings, gateway)
    return logged, [(j[4], j[6], wire.text) for j, (wire, _) in zip(journal, results)]


def _settled_row(wire, verdict, live, owner, settings):
    """The message's update and its journal row, as the delivery policy decides."""
    row = wire.row
    answered = dt.datetime.fromtimestamp(verdict.at or time.time(), UTC).replace(tzinfo=None)
    mailing = live.get(row.mailing_id) or Live(CANCELLED, "", dt.datetime.min)
    status, in_doubt, next_at, error = next_status(row, verdict, mailing, answered, settings)
    update = (status, answered if status == SENT else None, wire.text, error[:500], next_at, in_doubt,
              row.id, owner)
    outcome = RETRY if status == PENDING else status
    entry = (row.id, row.mailing_id, row.client_id, answered, outcome, verdict.http_status,
             verdict.latency_ms, error[:500], owner)
    return update, entry


def _attempt_record(wire, verdict, entry, gateway):
    """The log record of one attempt: what was sent where (credentials masked), what came of it, and
    the gateway's own id of the message when it gave one (the place SMS Aero's id is kept)."""
    row = wire.row
    return ("attempt", {
        "mailing_id": row.mailing_id, "message_id": row.id, "client_id": row.client_id,
        "outcome": entry[4], "http_status": verdict.http_status, "latency_ms": verdict.latency_ms,
        "error": entry[7][:200] or None, "gateway_id": verdict.ref or None,
        "request": (gateway.request_record(row.id, wire.phone, wire.text) if gateway else
                    {"json": {"id": row.id, "phone": int(wire.phone), "text": wire.text}})})


def _write_settled(updates, journal):
    # Raw executemany: building these statements with peewee cost a tenth of the consumer's CPU.
    p = db.param
    cursor = db.cursor()
    cursor.executemany(
        f"UPDATE message SET status = {p}, sent_at = {p}, text = {p}, last_error = {p}, "
        f"next_attempt_at = COALESCE({p}, next_attempt_at), in_doubt = {p}, "
        f"sending_since = NULL, lease_owner = NULL, lease_until = NULL "
        f"WHERE id = {p} AND lease_owner = {p} AND status IN ('pending', 'unknown') "
        f"AND sending_since IS NOT NULL", updates)
    # A success is the truth even when this consumer no longer holds the message (taken over while it
    # was frozen, or resent by the operator): recorded, it will not be posted again, unless another
    # consumer already has it on the wire.
    late_sent = [(u[1], u[2], u[6]) for u in updates if u[0] == SENT]
    if late_sent:
        cursor.executemany(
            f"UPDATE message SET status = 'sent', sent_at = {p}, text = {p}, last_error = '', "
            f"lease_owner = NULL, lease_until = NULL WHERE id = {p} "
            f"AND status IN ('pending', 'unknown') AND sending_since IS NULL", late_sent)
    cursor.executemany(f"INSERT INTO attempt (message_id, mailing_id, client_id, at, outcome, "
                       f"http_status, latency_ms, error, owner) VALUES ({placeholders(9)})", journal)


def _react_to_failures(results, settings, gateway=None):
    """A gateway that refuses us as a whole pauses everyone; a mailing that mostly fails pauses."""
    halted = [v for _, v in results if v.halt]
    if halted:
        pause_gateway(halted[0], settings, gateway)
    for mailing_id in {w.row.mailing_id for w, v in results if v.outcome == FAILED}:
        states.pause_if_failing(mailing_id, settings)


_pause_seen = [0.0, None]  # (monotonic time read, pause) : read at most once a second per process


def gateway_paused():
    """Whether sending is paused for everyone (after a 401 or a redirect), read from the database
    once a second."""
    if time.monotonic() - _pause_seen[0] > 1.0:
        _pause_seen[:] = [time.monotonic(), states.gateway_pause()]
    pause = _pause_seen[1]
    return pause is not None and pause[0] > utcnow()


def pause_gateway(verdict, settings=None, gateway=None):
    settings = settings or _settings.current()
    until = utcnow() + dt.timedelta(seconds=settings.auth_pause)
    if not 300 <= (verdict.http_status or 0) < 400:
        reason = (gateway.pause_reason(verdict) if gateway else
                  f"the gateway refused the token ({verdict.error}); sending is paused for everyone: "
                  f"set a valid PROBE_TOKEN and restart the consumer")
    else:
        reason = f"the gateway answered with a redirect ({verdict.error}); sending is paused for everyone"
    states.set_gateway_pause(until, reason)
    _pause_seen[:] = [time.monotonic(), (until, reason)]


def attempt(gateway, wire):
    # The last checks before the wire, on this process's monotonic clock, here and again just before
    # the request's first byte is written (after any connect): a consumer frozen, or a connect slow,
    # between the mark and the POST must not send after the end it read, nor long after an operator
    # may have paused, cancelled or resent.
    if time.monotonic() >= wire.not_after:
        return None
    return gateway.send(wire.row.id, wire.phone, wire.text, send_by=wire.not_after)


def dispatch(gateway, settings=None, budget=None, stop=None):
    """Send due messages until none are due, the time budget is spent or `stop` is set. Returns the
    count settled."""
    settings = settings or _settings.current()
    deadline = time.monotonic() + (settings.budget if budget is None else budget)

    def refill():
        if stop is not None and stop.is_set():
            return []
        if time.monotonic() >= deadline:
            return []
        return claim(pacing.claim_size(rates.Caps.of(settings), settings.batch))

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

    def has_writes(self):
        return bool(self.results or self.unsent or self.windows or self.expired)


def send_batch(rows, gateway, pool, settings=None, refill=None, stop=None):
    """Send claimed messages with `concurrency` requests in flight; with `refill`, claim the next batch
    as soon as this one is all handed out, so the wire never drains between batches. Returns the
    count settled."""
    return Batch(gateway, pool, settings or _settings.current(), refill, stop).run(rows)


class Batch:
    """One dispatcher's send loop: claimed messages queued, requests in flight, and the next step's
    writes. Each step is one transaction that settles the answers come so far and marks the next
    group as on the wire; when storage refuses it, nothing new is marked and the same answers are
    offered again until it is taken."""

    def __init__(self, gateway, pool, settings, refill=None, stop=None):
        self.gateway, self.pool, self.settings, self.refill, self.stop = gateway, pool, settings, refill, stop
        self.queue, self.futures, self.pending, self.mailings = deque(), {}, Step(), {}
        self.trouble = 0  # consecutive refused steps
        self.settled = 0
        self.top_up = max(1, settings.concurrency // 4)
        self.caps = rates.Caps.of(settings)
        self.paced_until = 0.0  # monotonic: the total cap has no room before then

    def run(self, rows):
        self.admit(rows)
        try:
            while self.queue or self.futures or self.pending.has_writes():
                self.hand_back_if_stopping()
                self.claim_more()
                take = self.group_size()
                if (take or self.writes_due()) and not self.step(take):
                    continue  # storage refused the step; it waited, with backoff
                self.collect()
        finally:
            # Whatever stops this loop, what it claimed and never put on the wire goes back now:
            # its consumer lives on, so no takeover would hand it over.
            if self.queue:
                with contextlib.suppress(*STORAGE_ERRORS), writing():
                    release([r.id for r in self.queue])
        return self.settled

    def admit(self, rows):
        """Queue claimed rows whose client's window is open; defer or expire the others."""
        missing = {r.mailing_id for r in rows} - set(self.mailings)
        if missing:
            self.mailings.update({m.id: m for m in Mailing.select().where(Mailing.id.in_(list(missing)))})
        self.queue.extend(self.in_window(rows))

    def in_window(self, rows):
        """Those of `rows` whose client's window is open now (by the database's clock) and still will be
        MAILER_END_GUARD from now, as for the end: a request needs a moment to reach the gateway. The
        others are deferred to its next opening, or expire when it opens after the end."""
        now = db_clock()
        ready = rows
        for at in (now, now + dt.timedelta(seconds=self.settings.end_guard)):
            ready, later, expired = split_by_window(ready, self.mailings, at, operator_zone())
            for when, ids in later.items():
                self.pending.windows.setdefault(when, []).extend(ids)
            self.pending.expired.extend(expired)
        return ready

    def hand_back_if_stopping(self):
        # Stopping: what is claimed but not on the wire goes back now, not after a takeover.
        if self.stop is not None and self.stop.is_set() and self.queue:
            with contextlib.suppress(*STORAGE_ERRORS), writing():
                release([r.id for r in self.queue])
            self.queue.clear()

    def claim_more(self):
        if self.refill is None or self.queue or self.trouble:
            return
        try:
            more = self.refill()
        except STORAGE_ERRORS as exc:
            log.warning("claiming failed (%s); finishing what is on the wire", exc)
            more = []
        if more:
            self.admit(more)
        else:
            self.refill = None  # nothing more due now: finish what is on the wire

    def group_size(self):
        """How many queued messages to mark now: a group at least a quarter of the concurrency wide
        (or all that is left), so steps stay few while the wire stays full."""
        if self.paced():
            return 0
        free = self.settings.concurrency - len(self.futures)
        if self.queue and (free >= self.top_up or free >= len(self.queue)):
            return min(free, len(self.queue))
        return 0

    def paced(self):
        return time.monotonic() < self.paced_until

    def writes_due(self):
        return self.pending.has_writes() and (
            len(self.pending.results) >= self.top_up or not self.queue or self.trouble)

    def step(self, take):
        """Run one step; whether storage took it."""
        group = [self.queue.popleft() for _ in range(take)]
        if self.caps:
            # Held back by a cap, a message may have waited past its client's window: checked again.
            group = self.in_window(group)
        try:
            marked, kept, logged, observed, wait = run_step(self.pending, group, self.queue, self.gateway,
                                                            self.settings, self.caps, self.top_up)
        except STORAGE_ERRORS as exc:
            self.queue.extendleft(reversed(group))
            self.trouble += 1
            if self.trouble == 1 or self.trouble % 20 == 0:
                log.warning("storage refused a send step (%s); %d answers kept, retrying", exc,
                            len(self.pending.results))
            _wait_some(self.futures, self.pending, min(1.0, 0.05 * 2 ** min(self.trouble, 5)))
            return False
        if self.trouble:
            log.warning("storage is back after %d refused steps", self.trouble)
        self.trouble = 0
        events(logged)
        metrics.observe_attempts(observed)  # after the commit
        self.settled += len(self.pending.results)
        self.pending = Step()
        self.queue = kept
        self.paced_until = time.monotonic() + wait if wait else 0.0
        for wire in marked:
            self.futures[self.pool.submit(attempt, self.gateway, wire)] = wire
        return True

    def collect(self):
        """Wait a moment for answers."""
        if self.futures:
            _wait_some(self.futures, self.pending, 0.05)
        elif self.trouble:
            nap(0.05)
        elif self.paced():
            nap(min(0.05, self.paced_until - time.monotonic()))


def _wait_some(futures, pending, timeout):
    if not futures:
        nap(timeout)
        return
    done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
    for future in done:
        wire = futures.pop(future)
        verdict = future.result()
        if verdict is None:
            pending.unsent.append(wire)
        else:
            pending.results.append((wire, verdict))


def run_step(pending, group, queue, gateway, settings=None, caps=None, least=1):
    """One transaction: settle what came back, then mark as on the wire what the caps let through of
    `group`. Returns the marked messages to post, the queue left (rows of mailings no longer running
    are handed back, rows the total cap holds back come first), the log records and the metrics to
    emit after the commit, and how long the total cap has no room (seconds; 0: it has)."""
    settings = settings or _settings.current()
    caps = caps if caps is not None else rates.Caps.of(settings)
    wires = [w for w, _ in pending.results] + pending.unsent
    ids = ({r.mailing_id for r in group} | {r.mailing_id for r in queue}
           | {w.row.mailing_id for w in wires} | {r.mailing_id for r in pending.expired})
    guard = dt.timedelta(seconds=settings.end_guard)
    with writing():
        live = live_mailings(ids)
        now = db_clock()
        logged, observed = [], []
        if pending.results:
            logged, observed = settle(pending.results, live, gateway, settings=settings)
        if pending.unsent:
            _unmark(pending.unsent, live, now, guard)
        if pending.windows:
            defer(pending.windows)
        if pending.expired:
            close_held(pending.expired, EXPIRED, "the client's window opens after the mailing ends")
        go, kept = _sort_group(group, queue, live, now, guard)
        go = _suppress_opted_out(go)
        grant = pacing.take(go, caps, lambda row: caps.cost(segments.count(live[row.mailing_id].text).parts),
                            now, least)
        if grant.later:
            defer(grant.later)
        kept.extendleft(reversed(grant.held))
        marked = _mark(grant.go, live, now, guard)
    return marked, kept, logged, observed, grant.wait


def _unmark(unsent, live, now, guard):
    """Marked, never posted: the end it read came while this consumer waited (it may have been
    frozen). Unmarked, it expires, or goes back to be sent if the end was moved meanwhile. A takeover
    or the overdue rule may have called it in doubt meanwhile: it was not."""
    for doubt in (False, True):
        ids = [w.row.id for w in unsent if bool(w.row.in_doubt) == doubt]
        for part in chunks(ids):
            (Message.update(sending_since=None, attempts=Message.attempts - 1, text=None,
                            status=PENDING, in_doubt=doubt)
             .where(Message.id.in_(part) & (Message.lease_owner == OWNER)
                    & Message.status.in_([PENDING, UNKNOWN]) & Message.sending_since.is_null(False))
             .execute())
    rows = [w.row for w in unsent]
    cancelled = [r for r in rows if r.mailing_id not in live or live[r.mailing_id].state == CANCELLED]
    ended = [r for r in rows if r not in cancelled and now >= live[r.mailing_id].end_at - guard]
    # The cancel that came meanwhile could not touch them while they were marked: it does now.
    close_held(cancelled, CANCELLED, "mailing cancelled")
    close_held(ended, EXPIRED, "mailing ended before this attempt")
    release([r.id for r in rows if r not in cancelled and r not in ended])


def _sort_group(group, queue, live, now, guard):
    """Of the group about to be marked: what may go now; the rest expires (its end is within the
    guard) or goes back (its mailing no longer runs, or sending is paused for everyone), as does the
    queue of a mailing that stopped. Returns (go, the queue kept)."""
    halted = gateway_paused()

    def sendable(row):
        mailing = live.get(row.mailing_id)
        return not halted and mailing is not None and mailing.state == RUNNING

    ended = [r for r in group if sendable(r) and now >= live[r.mailing_id].end_at - guard]
    close_held(ended, EXPIRED, "mailing ended before this attempt")
    go = [r for r in group if sendable(r) and now < live[r.mailing_id].end_at - guard]
    release([r.id for r in [*group, *queue] if not sendable(r)])
    return go, deque(r for r in queue if sendable(r))


def opted_out(rows):
    """Of these messages, those whose phone is on the stop list now (read in the step's transaction,
    the one that marks the others: a phone that opted out before it began never goes on the wire)."""
    found = set()
    for part in chunks([r.id for r in rows]):
        found.update(i for (i,) in Message.select(Message.id).where(
            Message.id.in_(part) & Message.phone.in_(OptOut.select(OptOut.phone))).tuples())
    return found


def _suppress_opted_out(go):
    """A message whose phone opted out after its audience was built is suppressed, not sent; returns
    the others."""
    stopped = opted_out(go) if go else set()
    if stopped:
        close_held([r for r in go if r.id in stopped], SUPPRESSED, "the phone is on the stop list")
    return [r for r in go if r.id not in stopped]


def _mark(go, live, now, guard):
    """Mark what goes as on the wire; each marked message must leave before its monotonic deadline
    (the end it read, less the guard, and MAX_WIRE_WAIT at most)."""
    phones, texts = mark_on_wire(go, live, now) if go else ({}, {})
    release([r.id for r in go if r.id not in phones])  # cancelled, deleted or taken meanwhile
    started = time.monotonic()
    marked = []
    for row in go:
        if row.id in phones:
            mailing = live[row.mailing_id]
            left = min((mailing.end_at - guard - now).total_seconds(), MAX_WIRE_WAIT)
            marked.append(OnWire(row, phones[row.id], texts.get(row.id, mailing.text), started + left))
    return marked
