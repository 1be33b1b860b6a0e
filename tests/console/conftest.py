"""Each console test gets its own SQLite database and huey queue (helpers: console_testkit.py)."""
from types import SimpleNamespace

import pytest

import models
import tasks
from domain import settings


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/m.db"
    queue_url = f"sqlite:///{tmp_path}/q.db"
    monkeypatch.setenv("MAILER_DB_URL", url)
    monkeypatch.setenv("MAILER_TZ", "Europe/Moscow")
    monkeypatch.setenv("MAILER_QUEUE_URL", queue_url)
    monkeypatch.delenv("MAILER_THEME", raising=False)
    settings.reload()
    database = models.open_database(url)
    tasks.use_queue(queue_url)
    yield SimpleNamespace(tmp=tmp_path, url=url, queue_url=queue_url, path=tmp_path / "m.db",
                          database=database)
    database.close()


@pytest.fixture
def sim(simulator):
    """The suite's gateway simulator (tests/conftest.py), with the token and the refused phone the
    console tests expect."""
    return simulator(token="t", reject_phones=["79005550000"], log_path=None)
