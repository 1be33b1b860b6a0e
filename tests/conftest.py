"""Shared fixtures: a fresh SQLite database and queue per test, the gateway simulator on 127.0.0.1,
real consumer processes and the real `mailer` command line (helpers in support.py)."""
import signal

import pytest

from support import TOKEN, Env


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
