"""The throughput caps' shared buckets: how many of the messages about to be marked may go now.

One token bucket per cap (domain.rates), a row of `rate_bucket`, taken from in the very transaction
that marks messages as on the wire: on SQLite that transaction holds the write lock, on PostgreSQL the
bucket rows are locked FOR UPDATE until it commits, so every consumer takes its turn and the cap holds
for all of them together, on any number of machines. Nothing is taken for a message that does not go.

The buckets keep time by one clock every consumer shares: PostgreSQL's (the server's), or on SQLite,
whose consumers share a machine, the kernel's boot clock (CLOCK_BOOTTIME: it never steps when the wall
clock is set, and a process whose wall clock is faked, or a machine whose clock is wrong, reads it
alike). A bucket whose time is ahead of that clock (after a reboot, or a server clock set back) starts
again from now with what it held: time never counts twice.
"""
import dataclasses
import datetime as dt
import math

from domain import rates
from engine.storage import is_postgres, placeholders
from models import RateBucket, db, shared_seconds

# The total cap holds back what it cannot let through now, and a dispatcher claims no more than this
# many seconds of it at once: claimed messages wait in its queue for tokens, not in the database.
CLAIM_SECONDS = 1.0
# A message an operator's cap lets through within this many seconds waits in the dispatcher's queue;
# one later goes back to the database until this long before its turn.
HOLD_AHEAD = 0.3


def claim_size(caps, batch):
    """How many messages a dispatcher claims at once under these caps."""
    if caps.total is None:
        return batch
    return max(1, min(batch, math.ceil(caps.total * CLAIM_SECONDS)))


@dataclasses.dataclass
class Bucket:
    key: str
    rate: float
    tokens: float


@dataclasses.dataclass
class Grant:
    """What the caps let through of a group: `go` now; `held` wait in the queue (for the total cap, or
    an operator's that has room within HOLD_AHEAD), `wait` seconds at least; `later` ({UTC instant:
    [ids]}) are deferred in the database to shortly before their operator's cap has room for them."""
    go: list
    held: list = dataclasses.field(default_factory=list)
    later: dict = dataclasses.field(default_factory=dict)
    wait: float = 0.0


def take(rows, caps, cost, now, least=1):
    """Take tokens for `rows` (in order) from the caps' buckets, inside the caller's transaction.
    cost(row): the tokens one message takes (domain.rates.Caps.cost); row.operator: its operator
    code; now: the database's UTC time, for `later`. `least`: the held rows wait until the total
    bucket has this many tokens (one step then marks a group, not one message)."""
    if not caps or not rows:
        return Grant(list(rows))
    wanted = {rates.TOTAL: caps.total} if caps.total is not None else {}
    wanted.update({rates.operator_key(r.operator): caps.operators[r.operator]
                   for r in rows if r.operator in caps.operators})
    if not wanted:
        return Grant(list(rows))
    seconds = shared_seconds()
    buckets = _open(wanted, caps.unit, seconds)
    total = buckets.get(rates.TOTAL)
    grant, behind, waits = Grant([]), {}, []
    for row in rows:
        if total is not None and total.tokens < 1:
            grant.held.append(row)
            continue
        tokens = cost(row)
        own = buckets.get(rates.operator_key(row.operator))
        if own is not None and own.tokens < 1:
            # Its place in this operator's line: the tokens of those waiting before it.
            ahead = behind.get(own.key, 0.0)
            behind[own.key] = ahead + tokens
            seconds_off = (1 - own.tokens + ahead) / own.rate
            if seconds_off <= HOLD_AHEAD:
                grant.held.append(row)
                waits.append(seconds_off)
            else:
                # Back from the database HOLD_AHEAD early: a claim that comes late spills nothing.
                at = now + dt.timedelta(seconds=math.ceil((seconds_off - HOLD_AHEAD) * 10) / 10)
                grant.later.setdefault(at, []).append(row.id)
            continue
        grant.go.append(row)
        for bucket in (total, own):
            if bucket is not None:
                bucket.tokens -= tokens
    if total is not None and total.tokens < 1 and grant.held:
        # Half a bucket at most: waiting for a full one, any lateness would spill tokens.
        enough = max(1.0, min(least, len(grant.held), rates.capacity(total.rate) / 2))
        waits.append((enough - total.tokens) / total.rate)
    if grant.held:
        grant.wait = max(0.0, min(waits)) if waits else 0.0
    _store(buckets.values(), caps.unit, seconds)
    return grant


def _open(wanted, unit, seconds):
    """The buckets named in `wanted` ({key: rate}), locked for this transaction and refilled to
    `seconds`; a bucket not there yet starts full."""
    keys = sorted(wanted)  # always locked in one order: two consumers never wait on each other in a circle
    lock = " FOR UPDATE" if is_postgres() else ""
    select = (f'SELECT "key", tokens, at FROM rate_bucket WHERE "key" IN ({placeholders(len(keys))}) '
              f'ORDER BY "key"{lock}')
    found = db.execute_sql(select, keys).fetchall()
    if len(found) < len(keys):
        RateBucket.insert_many(
            [{"key": k, "tokens": rates.capacity(wanted[k]), "at": seconds, "rate": wanted[k], "unit": unit}
             for k in keys]).on_conflict_ignore().execute()
        found = db.execute_sql(select, keys).fetchall()
    buckets = {}
    for key, tokens, at in found:
        rate = wanted[key]
        # A bucket ahead of the shared clock (a reboot, a server clock set back) counts no time.
        buckets[key] = Bucket(key, rate, rates.refill(min(tokens, rates.capacity(rate)), min(at, seconds),
                                                      rate, seconds))
    return buckets


def _store(buckets, unit, seconds):
    p = db.param
    db.cursor().executemany(f"UPDATE rate_bucket SET tokens = {p}, at = {p}, rate = {p}, unit = {p} "
                            f'WHERE "key" = {p}',
                            [(b.tokens, seconds, b.rate, unit, b.key) for b in buckets])
