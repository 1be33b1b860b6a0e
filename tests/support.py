"""Test helpers, the one copy of each: one test's world (database, queue, environment, consumer
processes) and the real `mailer` command line, `wait_for`, `free_port`, a fresh database. Fixtures
using them live in conftest.py; the benchmarks (bench/harness.py) import `free_port` from here too.
Only the standard library is imported at the top: bench/ and servers.py load this module early."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAILER = [sys.executable, "-m", "app"]
TOKEN = "test-token-0123456789"
HOST = "127.0.0.1"


def wait_for(predicate, timeout=20.0, interval=0.1, message="condition", errors=()):
    """Poll until predicate() is truthy and return its value; bounded by `timeout` seconds.
    Exceptions of the types in `errors` count as "not yet" (a server still starting); the last one
    is named in the failure."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
        except errors as exc:
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}"
                         + (f" (last error: {last!r})" if last is not None else ""))


def free_port(host=HOST):
    """A TCP port nothing listens on now (for a server that must be told its port up front; one that
    can bind port 0 itself should)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def open_database(directory, name="m.db"):
    """Point this process's models at a fresh SQLite file in `directory` (schema migrated); returns
    its URL. Close with models.db.close()."""
    import models
    url = f"sqlite:///{Path(directory) / name}"
    models.open_database(url)
    return url


class Env:
    """One test's world: its database, queue, environment and processes."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.db_path = tmp_path / "mailer.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER_", "PROBE_", "SMSAERO_"))}
        self.env.update(MAILER_DB_URL=f"sqlite:///{self.db_path}",
                        MAILER_QUEUE_URL=f"sqlite:///{tmp_path / 'queue.db'}",
                        MAILER_TZ="Europe/Moscow", MAILER_RETRY_BASE="0.5", MAILER_RETRY_CAP="2",
                        MAILER_READ_TIMEOUT="2", MAILER_CONNECT_TIMEOUT="1",
                        PYTHONPATH=str(ROOT))
        self.consumers = []
        self.cleanups = []  # run after the consumers are stopped (unmounting a test's disk, ...)
        self.prefix = []  # e.g. faketime for clock-shifted runs

    def use_gateway(self, sim):
        """Send through this simulator, with the backend of its protocol."""
        if sim.protocol.name == "smsaero":
            self.env.update(MAILER_GATEWAY="smsaero", SMSAERO_URL=sim.url, SMSAERO_EMAIL=sim.email,
                            SMSAERO_API_KEY=sim.token)
        else:
            self.env.update(PROBE_URL=sim.url, PROBE_TOKEN=sim.token)

    def mailer(self, *args, check=True):
        result = subprocess.run(self.prefix + MAILER + [str(a) for a in args], env=self.env, cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"mailer {' '.join(map(str, args))} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def mailer_json(self, *args):
        return json.loads(self.mailer(*args, "--json").stdout)

    def mailer_batch(self, commands):
        """Several command lines run one after another by main() in one process (tests/cli_batch.py):
        for long lists of refusals, where a process each would cost ~0.5 s apiece. Returns one
        CompletedProcess per command."""
        argvs = [[str(a) for a in args] for args in commands]
        result = subprocess.run(self.prefix + [sys.executable, str(ROOT / "tests" / "cli_batch.py")],
                                input=json.dumps(argvs), env=self.env, cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return [subprocess.CompletedProcess(argv, r["returncode"], r["stdout"], r["stderr"])
                for argv, r in zip(argvs, json.loads(result.stdout))]

    root = ROOT

    def consumer_command(self):
        return self.prefix + MAILER + ["consumer"]

    def start_consumer(self, **extra_env):
        log = open(self.dir / f"consumer-{len(self.consumers)}.log", "w")
        proc = subprocess.Popen(self.consumer_command(), env={**self.env, **extra_env}, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        self.consumers.append(proc)
        wait_for(lambda: self.query("SELECT count(*) FROM heartbeat WHERE pid = ?", proc.pid)[0][0]
                 if self._database_exists() and self._has_table("heartbeat") else 0,
                 timeout=20, message="the consumer's heartbeat")
        return proc

    def stop(self, proc, sig=signal.SIGTERM, timeout=30):
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def consumer_logs(self):
        return "\n".join(p.read_text() for p in sorted(self.dir.glob("consumer-*.log")))

    def use_database(self, url):
        """Point this world's commands, consumers and queries at another database (PostgreSQL)."""
        self.env["MAILER_DB_URL"] = url

    @property
    def postgres_url(self):
        url = self.env["MAILER_DB_URL"]
        return url if url.startswith(("postgres://", "postgresql://")) else None

    def _database_exists(self):
        return self.postgres_url is not None or self.db_path.exists()

    def _has_table(self, name):
        if self.postgres_url:
            return bool(self.query("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                                   "AND table_schema = current_schema()", name))
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE name = ?", name))

    def query(self, sql, *params):
        """Rows of one SQL statement written with `?` placeholders, on SQLite or PostgreSQL."""
        if self.postgres_url:
            import psycopg
            with psycopg.connect(self.postgres_url, autocommit=True, connect_timeout=10) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def statuses(self, mailing_id):
        return dict(self.query("SELECT status, count(*) FROM message WHERE mailing_id = ? GROUP BY status",
                               mailing_id))

    def import_clients(self, rows):
        path = self.dir / f"clients-{time.monotonic_ns()}.csv"
        path.write_text("phone,operator,tag,tz\n" + "".join(",".join(r) + "\n" for r in rows))
        return self.mailer("clients", "import", path)


def phones(count, start=0, prefix="7900"):
    return [f"{prefix}{i:07d}" for i in range(start, start + count)]


class ApiServer:
    """`mailer api` on a free 127.0.0.1 port in one test's world, with a token of each scope made by
    `mailer api-token create`; its stdout and stderr (uvicorn's access log) go to `log_path`."""

    def __init__(self, world):
        self.world = world
        scopes = ("read", "operator", "inbound")
        made = world.mailer_batch([("api-token", "create", "--scope", s, "--name", f"test-{s}", "--json")
                                   for s in scopes])
        self.tokens = {scope: json.loads(r.stdout)["token"] for scope, r in zip(scopes, made)}
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log_path = world.dir / "api.log"
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen(MAILER + ["api", "--port", str(self.port)], env=world.env, cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT)
        import requests
        self.http = requests.Session()
        # Timeouts count as "not yet": the first /openapi.json builds the document, slow on a busy machine.
        wait_for(lambda: self.proc.poll() is not None or self.http.get(self.url + "/openapi.json", timeout=10).ok,
                 timeout=60, errors=(requests.ConnectionError, requests.Timeout), message="the API server")
        assert self.proc.poll() is None, self.log_path.read_text()

    def call(self, method, path, scope="operator", token=None, **kwargs):
        """One request with the token of `scope` (scope=None: no token; token=: that one)."""
        token = token if token is not None else self.tokens.get(scope) if scope else None
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def json(self, method, path, status=200, **kwargs):
        """The JSON of a request that must answer `status`."""
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json()

    def log(self):
        return self.log_path.read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.http.close()
