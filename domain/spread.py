"""A spread mailing (Mailing.spread): its messages go evenly over the time it has instead of all at
once. Only their due times (`Message.next_attempt_at`, which a claim already honours) change, so
the engine knows nothing of it.

The time it has: from now (its start, a resume, a new end, clients attached while it runs) to its end
less MAILER_END_GUARD and a margin (1 % of that span, a minute at most), so that the last message
is due before the end. With a window (and/or days), per client zone: from the window's first
opening at or after now to the close of that same opening, capped by the end so; a zone whose
window opens only after the end is left alone (the engine expires its messages).

In each zone the messages are due in id order at even steps, the first at once: message k of n at
start + k * span / n. One UPDATE ... FROM over ROW_NUMBER() OVER (PARTITION BY the zone), on SQLite
(3.33+) and PostgreSQL alike: a million messages are respread without one round trip per row."""
import datetime as dt
from dataclasses import dataclass

import peewee as pw

from domain import settings as _settings
from domain.times import to_naive_utc
from domain.vocabulary import PENDING
from domain.windows import next_window_open, window_close
from models import Client, Message, db

MARGIN_SHARE = 0.01  # of the span, kept free before its end
MARGIN_MAX = dt.timedelta(minutes=1)
EPOCH = dt.datetime(1970, 1, 1)
MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Span:
    """Where a zone's messages are due: from `start`, evenly, the last one before `end`. `tz` None:
    every zone alike (no window)."""
    tz: str | None
    start: dt.datetime
    end: dt.datetime


def _trimmed(tz, start, stop):
    if stop <= start:
        return None
    return Span(tz, start, stop - min((stop - start) * MARGIN_SHARE, MARGIN_MAX))


def window_of(mailing):
    """(window, days) of a Mailing or of a dict of its columns (clean_mailing's row)."""
    get = mailing.get if isinstance(mailing, dict) else lambda name: getattr(mailing, name)
    start, end = get("window_start"), get("window_end")
    return (None if start is None else (start, end)), get("days")


def spans(begin, end_at, window, days, zones, guard=None):
    """The Spans of a mailing spread from `begin` (naive UTC) until `end_at` for clients in `zones`
    (only with a window or days; without, one Span for all). Pure."""
    guard = dt.timedelta(seconds=_settings.current().end_guard) if guard is None else guard
    stop = end_at - guard
    if window is None and days is None:
        span = _trimmed(None, begin, stop)
        return [span] if span else []
    found = []
    for tz in sorted(set(zones)):
        opens = next_window_open(begin, tz, window, days)
        if opens >= stop:
            continue  # never open before the end
        closes = window_close(opens, tz, window, days)
        span = _trimmed(tz, opens, stop if closes is None else min(closes, stop))
        if span:
            found.append(span)
    return found


def _us(when):
    return (when - EPOCH) // MICROSECOND


def _is_sqlite():
    return isinstance(db.obj, pw.SqliteDatabase)


def _due_time(due_us):
    """SQL turning microseconds since the epoch into the column's value: SQLite stores peewee's text
    'YYYY-MM-DD HH:MM:SS[.ffffff]' (compared as text: the same format as every other value),
    PostgreSQL a timestamp."""
    if _is_sqlite():
        return (f"datetime({due_us} / 1000000, 'unixepoch') || CASE WHEN {due_us} % 1000000 = 0 "
                f"THEN '' ELSE printf('.%06d', {due_us} % 1000000) END")
    return f"TIMESTAMP '1970-01-01 00:00:00' + {due_us} * INTERVAL '1 microsecond'"


SPREADABLE = ("m.status = '{pending}' AND m.lease_owner IS NULL AND m.sending_since IS NULL "
              "AND m.attempts = 0").format(pending=PENDING)


def plan(mailing, now):
    """The Spans of `mailing` from `now`, for every zone a client is in (a window or days only)."""
    window, days = window_of(mailing)
    zones = []
    if window is not None or days is not None:
        zones = [tz for (tz,) in Client.select(Client.tz).distinct().tuples()]
    return spans(now, mailing.end_at, window, days, zones)


def _ranked(source, source_params, planned):
    """SELECT over `source` (rows with an `id`, a `tz` with a window, and whatever else) adding
    `due_us`: the row's due time in microseconds since the epoch, message k of n in its zone due at
    start + k * span / n in id order; NULL in a zone without a Span (its window never opens)."""
    p = db.param
    if planned[0].tz is None:
        span = planned[0]
        sql = (f"SELECT a.*, CAST({p} AS BIGINT) + CAST((ROW_NUMBER() OVER (ORDER BY a.id) - 1) "
               f"* (CAST({p} AS DOUBLE PRECISION) / COUNT(*) OVER ()) AS BIGINT) AS due_us FROM ({source}) a")
        return sql, [_us(span.start), _us(span.end) - _us(span.start), *source_params]
    zones = " UNION ALL ".join(f"SELECT CAST({p} AS VARCHAR(64)) AS zone, CAST({p} AS BIGINT) AS from_us, "
                               f"CAST({p} AS BIGINT) AS span_us" for _ in planned)
    sql = (f"SELECT a.*, z.from_us + CAST((ROW_NUMBER() OVER (PARTITION BY a.tz ORDER BY a.id) - 1) "
           f"* (CAST(z.span_us AS DOUBLE PRECISION) / COUNT(*) OVER (PARTITION BY a.tz)) AS BIGINT) AS due_us "
           f"FROM ({source}) a LEFT JOIN ({zones}) z ON z.zone = a.tz")
    return sql, [*source_params, *(v for s in planned for v in (s.tz, _us(s.start), _us(s.end) - _us(s.start)))]


def insert_spread(mailing, now, audience):
    """Materialize a spread mailing's audience with its due times, in one INSERT ... SELECT: no
    second pass over its rows (at a million clients an UPDATE of them all costs several seconds
    more). `audience`: a query of the clients to reach (Client.id, Client.phone, Client.tz).
    Returns how many messages it added (duplicates ignored), or None when nothing is to be spread
    (a plain insert will do)."""
    now = to_naive_utc(now)
    planned = plan(mailing, now)
    if not planned:
        return None
    source, source_params = audience.sql()
    ranked, params = _ranked(source, source_params, planned)
    p = db.param
    # In client id order, as materialize's plain insert (the (mailing, client) index grows at its
    # end); WHERE before ON CONFLICT: SQLite would read ON as a join's otherwise.
    sql = (f"INSERT INTO message (mailing_id, client_id, phone, status, created_at, next_attempt_at, "
           f"attempts, last_error) SELECT {p}, r.id, r.phone, '{PENDING}', {_due_time('n.now_us')}, "
           f"{_due_time('COALESCE(r.due_us, n.now_us)')}, 0, '' "
           f"FROM ({ranked}) r, (SELECT CAST({p} AS BIGINT) AS now_us) n WHERE 1 = 1 ORDER BY r.id "
           f"ON CONFLICT DO NOTHING")
    return db.execute_sql(sql, [mailing.id, *params, _us(now)]).rowcount


def spread_pending(mailing, now, after_id=None):
    """Spread `mailing`'s messages that are pending, never tried (a retry keeps its backoff), not
    leased and not on the wire over the time it has from `now`; only those with an id above
    `after_id` when given (clients just attached). One statement; returns how many were spread."""
    now = to_naive_utc(now)
    planned = plan(mailing, now)
    if not planned:
        return 0
    p = db.param
    where = f"m.mailing_id = {p} AND {SPREADABLE}" + (f" AND m.id > {p}" if after_id is not None else "")
    where_params = [mailing.id] + ([after_id] if after_id is not None else [])
    if planned[0].tz is None:
        source = f"SELECT m.id AS id FROM message m WHERE {where}"
    else:
        source = f"SELECT m.id AS id, c.tz AS tz FROM message m JOIN client c ON c.id = m.client_id WHERE {where}"
    ranked, params = _ranked(source, where_params, planned)
    # The target's own conditions again: on PostgreSQL a row a consumer leased meanwhile is
    # re-read and skipped.
    sql = (f"UPDATE message SET next_attempt_at = {_due_time('r.due_us')} FROM ({ranked}) r "
           f"WHERE message.id = r.id AND r.due_us IS NOT NULL AND {SPREADABLE.replace('m.', 'message.')}")
    return db.execute_sql(sql, params).rowcount


def unspread_pending(mailing, now):
    """Spread turned off: its never-tried pending messages due later are due now."""
    now = to_naive_utc(now)
    return (Message.update(next_attempt_at=now)
            .where((Message.mailing == mailing.id) & (Message.status == PENDING)
                   & Message.lease_owner.is_null() & Message.sending_since.is_null()
                   & (Message.attempts == 0) & (Message.next_attempt_at > now))
            .execute())


def last_due(mailing_id):
    """When the last of a mailing's pending messages is due (None: none is pending): through the
    (mailing, status, next_attempt_at) index."""
    last = (Message.select(Message.next_attempt_at)
            .where((Message.mailing == mailing_id) & (Message.status == PENDING))
            .order_by(Message.next_attempt_at.desc()).first())
    return last.next_attempt_at if last else None
