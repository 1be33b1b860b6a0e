"""Transactions for the engine, and what it does when storage refuses them.

Every write of the engine goes through `writing()`; a database that is locked past its busy timeout,
full or gone raises one of STORAGE_ERRORS, and the work waits for storage (`storage_retrying`)
instead of dying with it: an answer once received is never lost.
"""
import contextlib
import logging
import threading
import time

import peewee as pw

import models
from domain.times import nap
from models import db

log = logging.getLogger("mailer.engine")
STORAGE_PATIENCE = 30.0  # seconds to wait in-process for storage before handing over to the sweep


# What a failing database raises (locked past the busy timeout, disk full, connection lost): the work
# waits for storage to come back instead of dying with it.
STORAGE_ERRORS = (pw.OperationalError, pw.InterfaceError, pw.InternalError)

# SQLite lets one writer in at a time and makes the others sleep in growing steps (1, 2, 5, 10 ms...):
# the dispatchers of one process queue here instead, which keeps every step short.
_write_lock = threading.RLock()


@contextlib.contextmanager
def writing():
    with _write_lock, db.atomic():
        yield


IN_CHUNKS = 500  # ids per IN (...) list


def chunks(seq, size=IN_CHUNKS):
    seq = list(seq)
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def placeholders(n):
    return ", ".join([db.param] * n)


def is_postgres():
    return not isinstance(db.obj, pw.SqliteDatabase)


db_clock = models.db_now


def storage_retrying(fn, *args, patience=STORAGE_PATIENCE):
    """Call fn until storage takes it (a lock held past the busy timeout, a full disk), waiting in
    this process: the queue itself may live on the same failing disk. After `patience` seconds the
    error is raised, and the minute's sweep does the work once storage is back."""
    deadline = time.monotonic() + patience
    delay = 0.1
    while True:
        try:
            return fn(*args)
        except STORAGE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("storage refused %s (%s); retrying in %.1f s", fn.__name__, exc, delay)
            nap(delay)
            delay = min(1.0, delay * 2)
