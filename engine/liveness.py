"""Liveness and takeover, without comparing clocks.

A consumer counts its heartbeats; another takes it for dead only after watching the count stand
still for HEARTBEAT_STALE on its own monotonic clock, or, in the same kernel boot and PID namespace,
finding its process gone. What a dead consumer had on the wire is in doubt, and MAILER_IN_DOUBT
decides: `hold` makes it `unknown` (a late answer from a consumer that was only frozen still settles
it), `retry` sends it again with the same msgId.
"""
import datetime as dt
import logging
import os
import socket
import threading
import time

from domain import settings as _settings
from domain import states
from domain.audit import event
from domain.stats import HEARTBEAT_STALE
from domain.times import utcnow
from domain.vocabulary import HOLD, PENDING, RETRY, UNKNOWN
from engine import OWNER
from engine.dispatcher import release
from engine.storage import chunks, db_clock, writing
from models import Heartbeat, Mailing, Message
from ops import metrics

log = logging.getLogger("mailer.liveness")


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


def beat(gateway_description="", health=None):
    """Count a heartbeat, with the gateway's health as this consumer found it (a GatewayHealth; None
    leaves what the row says). Its row gone means others took this consumer for dead (it could not
    beat for a while) and took over its claims: say so, and come back."""
    now = utcnow()
    fields = {Heartbeat.beat_at: now, Heartbeat.gateway: gateway_description}
    if health is not None:
        fields.update({Heartbeat.gateway_ok_at: health.ok_at,
                       Heartbeat.gateway_failing_since: health.failing_since,
                       Heartbeat.gateway_failed_at: health.failed_at,
                       Heartbeat.gateway_error: health.cause})
    updated = (Heartbeat.update({Heartbeat.seq: Heartbeat.seq + 1, **fields})
               .where(Heartbeat.owner == OWNER).execute())
    if updated:
        _beaten[0] = True
        return
    if _beaten[0]:
        log.warning("this consumer was taken for dead while it could not beat; what it held was "
                    "taken over (its late answers still settle what it had on the wire)")
    (Heartbeat.insert({Heartbeat.owner: OWNER, Heartbeat.host: socket.gethostname(),
                       Heartbeat.pid: os.getpid(), Heartbeat.node: NODE,
                       Heartbeat.proc_start: PROC_START, Heartbeat.seq: 1,
                       Heartbeat.started_at: now, **fields})
     .on_conflict(conflict_target=[Heartbeat.owner], update=fields)
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


def recover(settings=None, watch=WATCH):
    """Take over from dead consumers: release what they had claimed; what they had on the wire is in
    doubt (held as `unknown`, its lease kept so a late answer still settles it; or, with
    MAILER_IN_DOUBT=retry, handed back to be sent again with the same msgId)."""
    owners = dead_owners(watch)
    if not owners:
        return {"unknown": 0, "released": 0, "retried": 0, "dead_owners": 0}
    now = utcnow()
    reason = "in doubt: the consumer stopped while this was on the wire"
    hold = (settings or _settings.current()).in_doubt == HOLD
    with writing():
        leased = (Message.select(Message.id, Message.mailing, Message.client_id, Message.sending_since)
                  .where(Message.lease_owner.in_(owners) & (Message.status == PENDING)).tuples())
        wire, idle = [], []
        for msg_id, mailing_id, client_id, sending_since in leased:
            (wire if sending_since is not None else idle).append((msg_id, mailing_id, client_id))
        # No journal row: whether the attempt was made is exactly what is not known; the message
        # says so, and the attempt is journaled if its consumer comes back with the answer.
        for part in chunks(wire):
            cond = Message.id.in_([w[0] for w in part]) & Message.lease_owner.in_(owners)
            if hold:
                states.hold_in_doubt(cond, f"{reason}; held, not re-sent (MAILER_IN_DOUBT=hold)")
            else:
                states.send_again_in_doubt(cond, f"{reason}; sent again (MAILER_IN_DOUBT=retry)", now)
        release([i[0] for i in idle], owner=None)
        Heartbeat.delete().where(Heartbeat.owner.in_(owners)).execute()
    for msg_id, mailing_id, client_id in wire:
        event(f"{reason}; " + ("held as unknown" if hold else "sent again"), mailing_id=mailing_id,
              message_id=msg_id, client_id=client_id)
    if wire:
        metrics.observe_attempts([(UNKNOWN if hold else RETRY, None)] * len(wire))
    return {"unknown": len(wire) if hold else 0, "retried": 0 if hold else len(wire),
            "released": len(idle), "dead_owners": len(owners)}


def settle_overdue(settings=None, read_timeout=None, now=None):
    """Messages still on the wire of a consumer that has not answered for them by the end of their
    mailing plus the read timeout (it is frozen, or cut off from storage) are in doubt now: every
    message is final by then. Their lease stays, so a late answer from that consumer still settles
    them; nothing is posted again."""
    if read_timeout is None:
        read_timeout = (settings or _settings.current()).read_timeout
    now = now or db_clock()
    ended = Mailing.select(Mailing.id).where(Mailing.end_at < now - dt.timedelta(seconds=read_timeout))
    with writing():
        return states.hold_in_doubt(Message.lease_owner.is_null(False) & Message.mailing.in_(ended),
                                    "in doubt: no answer came by the end plus the read timeout")
