"""The engine tier: the dispatcher run in this process against the gateway simulator, on SQLite and
on PostgreSQL. MAILER_TEST_DB picks the backends (`sqlite`, `postgres`, or both, comma-separated;
default both), as peewee's own test base picks its database from the environment. The simulator and
the PostgreSQL server are the suite's shared fixtures (tests/conftest.py)."""
import os
import uuid

import pytest

import models
import service
from domain import settings

BACKENDS = [b.strip() for b in os.environ.get("MAILER_TEST_DB", "sqlite,postgres").split(",") if b.strip()]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """A fresh, migrated database on the backend under test, the models bound to it."""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres")
        name = f"engine_{uuid.uuid4().hex[:10]}"
        server.create_database(name)
        url = server.url(name)
    else:
        url = f"sqlite:///{tmp_path / 'engine.db'}"
    settings.use(settings.Settings.from_env({"MAILER_DB_URL": url, "MAILER_TZ": "Europe/Moscow",
                                             "MAILER_RETRY_BASE": "0.2", "MAILER_RETRY_CAP": "0.5"}))
    previous = service.use_waker(service.NoWaker())  # no queue: the test drives the dispatcher
    database = models.open_database(url)
    yield request.param
    database.close()
    service.use_waker(previous)
