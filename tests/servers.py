"""Throw-away PostgreSQL and Redis servers for tests, on 127.0.0.1 only, in temporary directories.

PostgreSQL refuses to run as root: under root (CI) every server command runs as the `postgres` system
user that Debian's package creates, in a directory that user owns. Every wait is bounded.
"""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from support import HOST, free_port, wait_for


def postgres_bin_dir():
    """The newest /usr/lib/postgresql/*/bin holding initdb, pg_ctl and postgres; else None."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        bin_dir = Path(initdb).parent
        version = bin_dir.parent.name
        if (bin_dir / "pg_ctl").exists() and (bin_dir / "postgres").exists():
            found.append((tuple(int(p) for p in version.split(".") if p.isdigit()), bin_dir))
    if not found:
        on_path = shutil.which("pg_ctl")
        return Path(on_path).parent if on_path and shutil.which("initdb") else None
    return max(found)[1]


def redis_server_path():
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)


@dataclass
class Postgres:
    bin_dir: Path
    base: Path
    port: int
    user: str = "mailer"
    password: str = "mailer-test-pw"
    run_as: list = field(default_factory=list)  # ["runuser", "-u", "postgres", "--"] under root

    @property
    def data(self):
        return self.base / "data"

    @property
    def sockets(self):
        return self.base / "sockets"

    def url(self, database="postgres"):
        return f"postgresql://{self.user}:{self.password}@{HOST}:{self.port}/{database}"

    def _run(self, *args, timeout=120):
        return subprocess.run(self.run_as + [str(a) for a in args], check=True, capture_output=True,
                              text=True, timeout=timeout, cwd=self.base)

    def create_database(self, name):
        import psycopg
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self):
        try:
            for mode in ("fast", "immediate"):
                if not (self.data / "postmaster.pid").exists():
                    break
                try:
                    self._run(self.bin_dir / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30",
                              "stop", timeout=60)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                    if mode == "immediate":
                        raise
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_postgres():
    """initdb a fresh cluster in a temporary directory and start it on 127.0.0.1:PORT."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    base = Path(tempfile.mkdtemp(prefix="mailer-pg-"))
    run_as = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise FileNotFoundError("running as root but there is no `postgres` system user to run "
                                    "PostgreSQL as (Debian's postgresql package creates it)") from None
        os.chown(base, owner.pw_uid, owner.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    server = Postgres(bin_dir=bin_dir, base=base, port=free_port(), run_as=run_as)
    try:
        # Files below are written by the server's user: make them through it.
        server._run("mkdir", "-p", server.sockets)
        pwfile = base / "pwfile"
        server._run("sh", "-c", f"umask 077 && printf '%s\\n' '{server.password}' > '{pwfile}'")
        server._run(bin_dir / "initdb", "-D", server.data, "-U", server.user, f"--pwfile={pwfile}",
                    "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale",
                    timeout=180)
        options = (f"-k {server.sockets} -p {server.port} -c listen_addresses={HOST} "
                   # A throw-away cluster: durability is not what is tested.
                   f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   f"-c max_connections=200")
        server._run(bin_dir / "pg_ctl", "-D", server.data, "-l", base / "server.log", "-w", "-t", "60",
                    "-o", options, "start", timeout=90)
        import psycopg
        wait_for(lambda: psycopg.connect(server.url(), connect_timeout=3).close() or True, timeout=30,
                 message="PostgreSQL to accept connections", errors=(Exception,))  # errors: not up yet
    except BaseException:
        log = base / "server.log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        server.stop()
        if detail:
            raise RuntimeError(f"PostgreSQL did not start; its log ends with:\n{detail}")
        raise
    return server


@dataclass
class Redis:
    proc: subprocess.Popen
    port: int
    base: Path

    def url(self, db=0):
        return f"redis://{HOST}:{self.port}/{db}"

    def stop(self):
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def start_redis():
    path = redis_server_path()
    if path is None:
        raise FileNotFoundError("redis-server not found")
    base = Path(tempfile.mkdtemp(prefix="mailer-redis-"))
    port = free_port()
    log = open(base / "server.log", "w")
    proc = subprocess.Popen([path, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--dir", str(base)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=base)
    server = Redis(proc=proc, port=port, base=base)
    try:
        import redis
        wait_for(lambda: proc.poll() is None and redis.Redis.from_url(server.url(), socket_timeout=2).ping(),
                 timeout=20, message="Redis to answer PING", errors=(Exception,))
    except BaseException:
        detail = (base / "server.log").read_text()[-2000:]
        server.stop()
        raise RuntimeError(f"Redis did not start; its log ends with:\n{detail}")
    finally:
        log.close()
    return server
