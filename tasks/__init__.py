"""The huey queue and the tasks that wake the sending up.

Huey only wakes work up: a task that dies with its consumer loses nothing, because the database says
what is left. Each consumer runs a fixed number of dispatcher threads (engine.dispatcher) that look
for due work by themselves every IDLE_LOOK; a wake-up task only cuts that wait short, and a
minute-by-minute sweep repairs anything a lost task would have done.

The queue is opened lazily: importing this module creates no file and opens no connection; the
first task enqueued or the consumer does. The command line and the console reach it only through
`QueueWaker`, which app.py installs in the service layer.
"""
import datetime as dt
import logging
import threading
from pathlib import Path

from huey import Huey, PostgresHuey, RedisHuey, SqliteHuey, crontab

import models
from domain import settings as _settings
from domain import states, stats
from domain.times import UTC, nap, utcnow
from domain.vocabulary import LIVE_STATES, RUNNING, SCHEDULED
from engine.storage import storage_retrying

START_EARLY = dt.timedelta(seconds=1.5)  # the start task wakes early and waits for the exact second
# Dispatchers look for due work by themselves at least every IDLE_LOOK seconds, so every live
# consumer shares the sending whoever takes the wake-up task; a wake-up only cuts that wait short.
IDLE_LOOK = 1.0
wakeup = threading.Event()

log = logging.getLogger("mailer.tasks")


# ---------------------------------------------------------------------------------------------------
# The queue


def queue_url(settings=None):
    """MAILER_QUEUE_URL, by default a SQLite queue beside the SQLite database, or huey's tables in the
    PostgreSQL database (so consumers on several machines share it)."""
    settings = settings or _settings.current()
    if settings.queue_url:
        return settings.queue_url
    if models.is_postgres_url(settings.db_url):
        return settings.db_url
    path = models.sqlite_path(settings.db_url)
    if path and path != ":memory:":
        p = Path(path)
        return f"sqlite:///{p.with_name(p.stem + '-queue.db')}"
    return "sqlite:///data/mailer-queue.db"


def make_huey(url):
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("mailer", url=url, results=False)
    if models.is_postgres_url(url):
        # huey's own tables (huey_task, huey_schedule, ...) and LISTEN/NOTIFY; needs psycopg 3.2+.
        return _postgres_huey("postgresql://" + url.split("://", 1)[1])  # libpq knows no "+pool"
    path = models.sqlite_path(url)
    if path is None:
        raise SystemExit(f"MAILER_QUEUE_URL must be sqlite:///PATH, redis://... or postgresql://...; "
                         f"got {url!r}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("mailer", filename=path, results=False, timeout=30)


QUEUE_SCHEMA_LOCK = 0x6D61696C6571  # the advisory lock held while huey's tables are created


def _postgres_huey(dsn):
    """PostgresHuey whose tables are created under an advisory lock: CREATE TABLE IF NOT EXISTS run by
    several processes at once on a fresh database can fail on PostgreSQL's catalog."""
    import psycopg
    queue = PostgresHuey("mailer", dsn=dsn, results=False, create_tables=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (QUEUE_SCHEMA_LOCK,))
        try:
            queue.storage.initialize_schema()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (QUEUE_SCHEMA_LOCK,))
    return queue


class LazyHuey(Huey):
    """A Huey whose storage is made on first use, from the settings then in force: tasks can be
    declared at import without a queue file being created or a server being reached."""

    def __init__(self, name):
        self._storage = None
        super().__init__(name, results=False)

    def create_storage(self):
        return None  # made by the `storage` property when first needed

    @property
    def storage(self):
        if self._storage is None:
            self._storage = make_huey(queue_url()).storage
        return self._storage

    @storage.setter
    def storage(self, value):
        self._storage = value


huey = LazyHuey("mailer")


def use_queue(url):
    """Point the tasks at another queue: tests and tools that switch databases."""
    huey.storage = make_huey(url).storage


# ---------------------------------------------------------------------------------------------------
# Tasks


@huey.task()
def dispatch():
    """Wake this consumer's dispatchers now."""
    wakeup.set()


@huey.task()
def start_mailing(mailing_id):
    mailing = models.Mailing.get_or_none(models.Mailing.id == mailing_id)
    if mailing is None or mailing.state != SCHEDULED:
        return
    wait = (mailing.start_at - utcnow()).total_seconds()
    if 0 < wait <= START_EARLY.total_seconds() + 0.5:
        nap(wait)
    if storage_retrying(states.start_if_due, mailing_id):
        wakeup.set()  # this consumer's dispatchers at once, the others through the queue
        wake()


@huey.task()
def finish_mailing(mailing_id):
    storage_retrying(states.finish_if_ended, mailing_id)


@huey.task()
def settle_overdue():
    """At a mailing's end plus the read timeout: what is still on the wire of a consumer that has not
    answered for it (frozen, cut off) is in doubt now, so every message is final by then."""
    from engine import liveness
    storage_retrying(liveness.settle_overdue)


@huey.periodic_task(crontab(minute="*"))
def sweep():
    """Repair what lost tasks would have done: dead consumers' leases, due starts and ends; and fold
    the statistics' counters (PostgreSQL's delta rows) so that reading them stays a few rows."""
    from domain import counts
    from engine import dispatcher, liveness
    liveness.recover()
    liveness.settle_overdue()
    to_start, to_finish = states.due_mailings()
    for mailing_id in to_finish:
        states.finish_if_ended(mailing_id)
    for mailing_id in to_start:
        states.start_if_due(mailing_id)
    if dispatcher.due_soon() is not None:
        wake()
    storage_retrying(counts.fold)


# Checked every minute; the once-a-day rule is ops.report_mail.report_due's.
@huey.periodic_task(crontab(minute="*"), name="send_daily_report")
def send_daily_report():
    """Every minute: send the daily report if it is due; nothing without MAILER_REPORT_TO."""
    from ops import report_mail
    report_mail.run_due_report(huey)


# ---------------------------------------------------------------------------------------------------
# Waking the consumers


def wake():
    """A wake-up task per live consumer: with several consumers on a shared queue most get one, and
    any that does not finds the work by itself within IDLE_LOOK."""
    for _ in range(stats.live_consumers()):
        dispatch()


def schedule_mailing(mailing, settings=None):
    """Enqueue what a mailing needs next: its start, its end, or the dispatchers now."""
    settings = settings or _settings.current()
    if mailing.state == SCHEDULED:
        start_mailing.schedule((mailing.id,), eta=(mailing.start_at - START_EARLY).replace(tzinfo=UTC))
    if mailing.state in LIVE_STATES:
        finish_mailing.schedule((mailing.id,), eta=mailing.end_at.replace(tzinfo=UTC))
        settle_overdue.schedule(eta=(mailing.end_at + dt.timedelta(seconds=settings.read_timeout))
                                .replace(tzinfo=UTC))
    if mailing.state == RUNNING:
        wake()


class QueueWaker:
    """What the service layer tells the consumers through: huey tasks on the shared queue."""

    def mailing_changed(self, mailing):
        schedule_mailing(mailing)

    def work_due(self):
        wake()
