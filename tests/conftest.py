"""Shared fixtures: a fresh SQLite database and queue per test, the gateway simulator on 127.0.0.1,
real consumer processes and the real `mailer` command line (helpers in support.py)."""
import signal

import pytest

import service
import tasks
from domain import settings
from support import TOKEN, Env


@pytest.fixture(autouse=True)
def fresh_settings():
    """Each test starts with settings read from the environment it runs in, and with the service
    telling consumers through the queue, as the command line and the console do (app.py)."""
    settings.reload()
    previous = service.use_waker(tasks.QueueWaker())
    yield
    service.use_waker(previous)


@pytest.fixture
def world(tmp_path):
    env = Env(tmp_path)
    yield env
    for proc in env.consumers:
        env.stop(proc, signal.SIGKILL)
    for cleanup in reversed(env.cleanups):
        cleanup()


@pytest.fixture
def simulator(tmp_path):
    from simulator import GatewaySimulator
    sims = []

    def start(**options):
        options.setdefault("token", TOKEN)
        options.setdefault("log_path", str(tmp_path / f"accepted-{len(sims)}.jsonl"))
        sim = GatewaySimulator(**options).start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        sim.stop()


def pytest_collection_modifyitems(items):
    """Every test belongs to one tier, by where it lives: tests/unit (pure rules, milliseconds),
    tests/dispatch (the engine in process), everything else the system (processes, servers, the
    console). `pytest -m unit` is the quick loop."""
    for item in items:
        parts = item.path.parts
        tier = "unit" if "unit" in parts else "engine" if "dispatch" in parts else "system"
        item.add_marker(getattr(pytest.mark, tier))
