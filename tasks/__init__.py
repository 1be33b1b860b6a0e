"""The huey instance and the tasks that schedule and perform the sends.

Huey only wakes work up: a task that dies with its consumer loses nothing, because the database says
what is left. Each consumer runs at most a fixed number of dispatchers, so waking
them is cheap and idempotent; a minute-by-minute sweep repairs anything a lost task would have done.

The operations below (create_mailing, import_clients, ...) are what the command line and the console
call: each applies the domain rule in models and then wakes the consumer.
"""
import datetime as dt
import logging
import os
import threading
import time
from pathlib import Path

from huey import PostgresHuey, RedisHuey, SqliteHuey, crontab

import models
from models import RUNNING, SCHEDULED, PAUSED, utcnow
from tasks.logs import event

DISPATCH_SLOTS = int(os.environ.get("MAILER_DISPATCHERS", "2"))
START_EARLY = dt.timedelta(seconds=1.5)  # the start task wakes early and waits for the exact second
STORAGE_PATIENCE = 30.0  # seconds a task waits in-process for storage before handing over to the sweep

log = logging.getLogger("mailer.tasks")


def queue_url():
    """MAILER_QUEUE_URL, by default a SQLite queue beside the SQLite database, or huey's tables in the
    PostgreSQL database (so consumers on several machines share it)."""
    url = os.environ.get("MAILER_QUEUE_URL")
    if url:
        return url
    database_url = models.env_database_url()
    if models.is_postgres_url(database_url):
        return database_url
    path = models.sqlite_path(database_url)
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


huey = make_huey(queue_url())


def use_queue(url):
    """Point the (already decorated) tasks at another queue: tests and tools that switch databases."""
    fresh = make_huey(url)
    huey.storage = fresh.storage


# ---------------------------------------------------------------------------------------------------
# Tasks


# Each consumer runs DISPATCH_SLOTS dispatcher threads of its own (consumer.run_dispatchers). They look
# for due work by themselves at least every IDLE_LOOK seconds, so every live consumer shares the
# sending whoever takes the wake-up task; a wake-up only cuts that wait short.
IDLE_LOOK = 1.0
wakeup = threading.Event()


def storage_retrying(fn, *args, patience=STORAGE_PATIENCE):
    """Call fn until storage takes it (a lock held past the busy timeout, a full disk), waiting in
    this process: the queue itself may live on the same failing disk. After `patience` seconds the
    error is raised, and the minute's sweep does the work once storage is back."""
    from tasks.dispatcher import STORAGE_ERRORS
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            return fn(*args)
        except STORAGE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("storage refused %s (%s); retrying in %.1f s", fn.__name__, exc, delay)
            time.sleep(delay)
            delay = min(1.0, delay * 2)


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
        time.sleep(wait)
    if storage_retrying(models.start_if_due, mailing_id):
        wakeup.set()  # this consumer's dispatchers at once, the others through the queue
        wake()


@huey.task()
def finish_mailing(mailing_id):
    storage_retrying(models.finish_if_ended, mailing_id)


@huey.task()
def settle_overdue():
    """At a mailing's end plus the read timeout: what is still on the wire of a consumer that has not
    answered for it (frozen, cut off) is in doubt now, so every message is final by then."""
    from tasks import dispatcher
    storage_retrying(dispatcher.settle_overdue)


@huey.periodic_task(crontab(minute="*"))
def sweep():
    """Repair what lost tasks would have done: dead consumers' leases, due starts and ends."""
    from tasks import dispatcher
    dispatcher.recover()
    dispatcher.settle_overdue()
    to_start, to_finish = dispatcher.due_mailings()
    for mailing_id in to_finish:
        models.finish_if_ended(mailing_id)
    for mailing_id in to_start:
        models.start_if_due(mailing_id)
    if dispatcher.due_soon() is not None:
        wake()


_gateway = None


def gateway():
    """The process's one gateway client (one pooled session)."""
    global _gateway
    if _gateway is None:
        from tasks import dispatcher, probe
        _gateway = probe.gateway_from_env(pool_size=DISPATCH_SLOTS * dispatcher.SETTINGS.concurrency)
    return _gateway


# ---------------------------------------------------------------------------------------------------
# Waking the consumer


def wake():
    """A wake-up task per live consumer: with several consumers on a shared queue most get one, and
    any that does not finds the work by itself within IDLE_LOOK."""
    for _ in range(live_consumers()):
        dispatch()


def live_consumers(now=None):
    """How many consumers have a fresh heartbeat (at least 1, at most 64)."""
    from tasks import dispatcher
    since = (now or utcnow()) - dispatcher.HEARTBEAT_STALE
    alive = models.Heartbeat.select().where(models.Heartbeat.beat_at >= since).count()
    return min(64, max(1, alive))


def schedule_mailing(mailing):
    """Enqueue what a mailing needs next: its start, its end, or the dispatchers now."""
    if mailing.state == SCHEDULED:
        start_mailing.schedule((mailing.id,), eta=(mailing.start_at - START_EARLY).replace(tzinfo=models.UTC))
    if mailing.state in (SCHEDULED, RUNNING, PAUSED):
        finish_mailing.schedule((mailing.id,), eta=mailing.end_at.replace(tzinfo=models.UTC))
        read_timeout = float(os.environ.get("MAILER_READ_TIMEOUT", "10"))
        settle_overdue.schedule(eta=(mailing.end_at + dt.timedelta(seconds=read_timeout))
                                .replace(tzinfo=models.UTC))
    if mailing.state == RUNNING:
        wake()


# ---------------------------------------------------------------------------------------------------
# Operations for the command line and the console


def create_mailing(**fields):
    mailing = models.create_mailing(**fields)
    schedule_mailing(mailing)
    event("mailing created", mailing_id=mailing.id, state=mailing.state, start=str(mailing.start_at),
          end=str(mailing.end_at), operator=mailing.operator, tag=mailing.tag, window=mailing.window)
    return mailing


def edit_mailing(mailing_id, **fields):
    mailing = models.edit_mailing(mailing_id, **fields)
    schedule_mailing(mailing)
    event("mailing edited", mailing_id=mailing.id, changed=sorted(k for k, v in fields.items() if v is not None))
    return mailing


def set_mailing_state(mailing_id, action, reason=""):
    mailing = models.set_state(mailing_id, action, reason)
    if mailing.state == RUNNING:
        wake()
    event(f"mailing {action}", mailing_id=mailing.id, state=mailing.state, reason=reason or None)
    return mailing


def resend_in_doubt(mailing_id):
    count = models.resend_in_doubt(mailing_id)
    if count:
        _wake_if_running()
    event("mailing resend in doubt", mailing_id=mailing_id, resent=count)
    return count


def _wake_if_running():
    if models.Mailing.select().where(models.Mailing.state == RUNNING).exists():
        wake()


def create_client(**fields):
    client = models.create_client(**fields)
    _wake_if_running()
    event("client added", client_id=client.id, operator=client.operator, tag=client.tag, tz=client.tz)
    return client


def edit_client(client_id, **fields):
    client = models.edit_client(client_id, **fields)
    _wake_if_running()
    event("client edited", client_id=client.id, changed=sorted(k for k, v in fields.items() if v is not None))
    return client


def import_clients(source, all_or_nothing=False):
    report = models.import_clients(source, all_or_nothing)
    if report.imported:
        _wake_if_running()
    event("clients imported", imported=report.imported, rejected=len(report.rejected), total=report.total,
          source=str(source) if isinstance(source, (str, os.PathLike)) else None)
    return report


def delete_clients(ids):
    count = models.delete_clients(ids)
    for client_id in ids:
        event("client deleted", client_id=client_id)
    return count
