"""Shared fixtures, the one copy of each: a fresh SQLite database and queue per test (`world`, for
tests that drive the real `mailer` command line and consumer processes; `database`, for tests that
call the code in this process), the gateway simulator on 127.0.0.1 (`simulator`), and a running
mailing (`running_mailing`). Helpers in support.py.

Tests run in parallel (pytest-xdist, `-n` and `--dist loadgroup` in pyproject.toml): each test has
its own files under tmp_path and its own ports (servers bind 127.0.0.1 port 0, or support.free_port).
Tests whose verdict rests on timing (a deadline, a gap, a 50 ms instant) carry
@pytest.mark.xdist_group("timing"), and those that keep both cores busy for long (thousands of sends
by two consumers, PostgreSQL) @pytest.mark.xdist_group("heavy"): each group runs one test after
another on one worker, never two of its tests at once, while the other tests run beside them.
Without `-n` (or with `-n 0`) everything runs in one process, as before."""
import os
import signal
import uuid

import pytest

import service
import tasks
from domain import settings
import servers
from support import TOKEN, ApiServer, Env, open_database, phones


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
def database(tmp_path):
    """A fresh SQLite database in this process (models.db), schema migrated; yields its URL."""
    import models
    url = open_database(tmp_path)
    yield url
    models.db.close()


@pytest.fixture
def simulator(tmp_path):
    """start(**options) -> a GatewaySimulator on 127.0.0.1, a free port of its own (port=0) unless
    given one, token TOKEN, logging what it accepts to sim.log_path (log_path=None: no log)."""
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


@pytest.fixture
def running_mailing(world):
    """start(total, end="+2m", consumers=1, text="t", **consumer_env) -> (mailing, consumers):
    `total` clients imported, the consumers started (with consumer_env), then a mailing to all of
    them starting now. The world must already point at a gateway (world.use_gateway)."""
    def start(total, end="+2m", consumers=1, text="t", **consumer_env):
        world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(total)])
        procs = [world.start_consumer(**consumer_env) for _ in range(consumers)]
        mailing = world.mailer_json("mailings", "create", "--text", text, "--start", "now", "--end", end)
        return mailing, procs
    return start


# The API's tests run on both databases; on PostgreSQL in the group that starts it anyway.
API_DATABASES = [pytest.param("sqlite", id="sqlite"),
                 pytest.param("postgresql", id="postgresql", marks=pytest.mark.xdist_group("heavy"))]


@pytest.fixture(params=API_DATABASES)
def api_database(request, world):
    """The database of an API test's world: its SQLite file, or a fresh database on PostgreSQL."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres")
        world.use_database(server.create_database(f"api_{uuid.uuid4().hex[:12]}"))
    return request.param


@pytest.fixture
def api_server(world, api_database):
    """`mailer api` (support.ApiServer) on this test's world, stopped after it."""
    server = ApiServer(world)
    yield server
    server.stop()


def unavailable(what):
    message = (f"{what}: the tests on PostgreSQL and Redis need it (`make system-deps` installs Debian's "
               f"postgresql and redis-server; `pip install -e '.[test]'` the Python drivers)")
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"CI: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg package is not installed")
    if servers.postgres_bin_dir() is None:
        unavailable("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb, pg_ctl) are missing")
    server = servers.start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    try:
        import redis  # noqa: F401
    except ImportError:
        unavailable("the redis package is not installed")
    if servers.redis_server_path() is None:
        unavailable("redis-server is missing")
    server = servers.start_redis()
    yield server
    server.stop()


def pytest_collection_modifyitems(items):
    """Every test belongs to one tier, by where it lives: tests/unit (pure rules, milliseconds),
    tests/dispatch (the engine in process), everything else the system (processes, servers, the
    console). `pytest -m unit` is the quick loop."""
    for item in items:
        parts = item.path.parts
        tier = "unit" if "unit" in parts else "engine" if "dispatch" in parts else "system"
        item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def no_proxy(monkeypatch):
    """No *_PROXY from the environment for requests made here: requests honours them even for
    127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
