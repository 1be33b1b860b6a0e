"""Each console test gets its own SQLite database and huey queue (helpers: console_testkit.py)."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import models
import tasks


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/m.db"
    queue_url = f"sqlite:///{tmp_path}/q.db"
    monkeypatch.setenv("MAILER_DB_URL", url)
    monkeypatch.setenv("MAILER_TZ", "Europe/Moscow")
    monkeypatch.setenv("MAILER_QUEUE_URL", queue_url)
    monkeypatch.delenv("MAILER_THEME", raising=False)
    database = models.open_database(url)
    tasks.use_queue(queue_url)
    yield SimpleNamespace(tmp=tmp_path, url=url, queue_url=queue_url, path=tmp_path / "m.db",
                          database=database)
    database.close()


@pytest.fixture
def sim():
    """The gateway simulator, in-process on a free port."""
    from tasks.simulator import GatewaySimulator

    simulator = GatewaySimulator(port=0, token="t", reject_phones=["79005550000"]).start()
    yield simulator
    simulator.stop()


# tests/console is not a package (as a package it would be named `console` and shadow the code under
# test), so pytest imports this file under the top-level name `conftest`, the name tests/*.py use for
# `from conftest import ...` (tests/conftest.py). Once this file is registered, give the name back.
_THIS = sys.modules[__name__]
_PARENT = Path(__file__).resolve().parents[1] / "conftest.py"


def pytest_plugin_registered(plugin, manager):
    if plugin is not _THIS:
        return
    for other in manager.get_plugins():
        if Path(getattr(other, "__file__", None) or "/nonexistent").resolve() == _PARENT:
            sys.modules["conftest"] = other

