"""How many messages each mailing has in each status, read from the counters the database keeps in
the transaction of every change (migration 0015): a few rows a mailing, whatever its size.

SQLite keeps one row per (mailing, status) in `message_counts`. PostgreSQL keeps insert-only delta
rows in `message_count_delta`, summed here, and `fold` replaces a mailing's many rows by their sums
(the consumers' sweep calls it every minute). `status_counts_scanned` counts the messages themselves
(a GROUP BY over the (mailing, status, ...) index): the property tests and the benchmark compare the
two."""
import peewee as pw

from domain.vocabulary import PENDING
from models import Message, db

IN_CHUNK = 500  # ids per IN (...) list
FOLD_AT = 64  # a mailing's delta rows past which fold() sums them into one row per status
FOLD_LOCK = 0x636F756E7473  # any fixed number: the advisory lock of the one folder at a time


def _postgres():
    return isinstance(db.obj, pw.PostgresqlDatabase)


def _chunks(mailing_ids):
    ids = list(mailing_ids)
    return [ids[i:i + IN_CHUNK] for i in range(0, len(ids), IN_CHUNK)]


def _counter_sql():
    """SELECT mailing_id, status, n of the counters, to be narrowed by a WHERE on mailing_id and
    closed by the returned tail; counts of zero are left out (as a GROUP BY of messages has none)."""
    if _postgres():
        return ("SELECT mailing_id, status, SUM(n) FROM message_count_delta",
                " GROUP BY mailing_id, status HAVING SUM(n) <> 0")
    return "SELECT mailing_id, status, n FROM message_counts", " AND n <> 0"


def status_counts(mailing_ids=None):
    """{mailing id: {status: n}} from the counters (every mailing when mailing_ids is None)."""
    head, tail = _counter_sql()
    if mailing_ids is None:
        statements = [(f"{head} WHERE 1 = 1{tail}", [])]
    else:
        statements = [(f"{head} WHERE mailing_id IN ({', '.join([db.param] * len(ids))}){tail}", ids)
                      for ids in _chunks(mailing_ids)]
    counts = {}
    for sql, params in statements:
        for mailing_id, status, n in db.execute_sql(sql, params).fetchall():
            counts.setdefault(mailing_id, {})[status] = int(n)
    return counts


def status_totals():
    """{status: messages} over every mailing, from the counters."""
    totals = {}
    for by_status in status_counts().values():
        for status, n in by_status.items():
            totals[status] = totals.get(status, 0) + n
    return {status: n for status, n in totals.items() if n}


def status_counts_scanned(mailing_ids=None):
    """{mailing id: {status: n}} counting the messages themselves in one GROUP BY: what the counters
    must always equal."""
    query = (Message.select(Message.mailing, Message.status, pw.fn.COUNT(pw.SQL("*")))
             .group_by(Message.mailing, Message.status))
    parts = ([query] if mailing_ids is None
             else [query.where(Message.mailing.in_(ids)) for ids in _chunks(mailing_ids)])
    counts = {}
    for part in parts:
        for mailing_id, status, n in part.tuples():
            counts.setdefault(mailing_id, {})[status] = n
    return counts


def fold(at=FOLD_AT):
    """PostgreSQL: replace the delta rows of every mailing that has more than `at` of them by one row
    per status holding their sum (none for a sum of zero), so that reading a mailing's counts sums a
    few rows. One folder at a time (the others return at once); writers are never blocked (they only
    insert, and rows committed after this statement began are left for the next fold). Returns how
    many rows it removed (0 on SQLite, whose counters are one row a pair already)."""
    if not _postgres():
        return 0
    with db.atomic():
        if not db.execute_sql("SELECT pg_try_advisory_xact_lock(%s)", (FOLD_LOCK,)).fetchone()[0]:
            return 0
        cursor = db.execute_sql(
            "WITH gone AS (DELETE FROM message_count_delta WHERE mailing_id IN ("
            "  SELECT mailing_id FROM message_count_delta GROUP BY mailing_id HAVING COUNT(*) > %s)"
            "  RETURNING mailing_id, status, n), "
            "summed AS (INSERT INTO message_count_delta (mailing_id, status, n) "
            "  SELECT mailing_id, status, SUM(n) FROM gone GROUP BY mailing_id, status HAVING SUM(n) <> 0"
            "  RETURNING 1) "
            "SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM summed)", (at,))
        return cursor.fetchone()[0]


INSERT_TRIGGER = "message_counts_insert"


def inserting_pending(mailing_id, insert):
    """Run `insert()`, one statement adding messages of `mailing_id` all pending (an audience's
    INSERT ... SELECT) that returns how many it added, and count them as one addition. On SQLite the
    row trigger would cost a million trigger runs at a million clients (and make SQLite copy the
    SELECT's rows to a temporary table first): 1.2 s more on a 1.7 s mailing start. So the trigger is
    dropped and created again around the statement, in its transaction (a savepoint: a failure puts it
    back), where no other connection sees it gone: SQLite has one writer at a time. PostgreSQL's
    statement trigger counts the whole statement once: nothing to do there."""
    if _postgres():
        return insert()
    with db.atomic():
        (trigger,) = db.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?",
                                    (INSERT_TRIGGER,)).fetchone()
        db.execute_sql(f"DROP TRIGGER {INSERT_TRIGGER}")
        added = insert()
        db.execute_sql(trigger)
        if added:
            db.execute_sql("INSERT INTO message_counts (mailing_id, status, n) VALUES (?, ?, ?) "
                           "ON CONFLICT (mailing_id, status) DO UPDATE SET n = n + excluded.n",
                           (mailing_id, PENDING, added))
    return added
