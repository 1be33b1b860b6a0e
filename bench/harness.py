"""What the benchmarks share: the gateway simulator started as its own process, free ports, and
stopping processes within a bounded time."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
TOKEN = "bench-token"


def work_dir(prefix="mailer-bench-"):
    """A fresh temporary folder holding this run's database and queue; the environment points at it
    (before `models` and `tasks` are imported)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(MAILER_DB_URL=f"sqlite:///{work / 'mailer.db'}",
                      MAILER_QUEUE_URL=f"sqlite:///{work / 'queue.db'}", MAILER_TZ="UTC")
    return work


def open_service():
    """The database of work_dir() opened in this process, the service telling consumers through the
    queue as the command line does (app.py)."""
    import models
    import service
    import tasks
    models.open_database()
    service.use_waker(tasks.QueueWaker())


# The tests' own helpers (standard library only at import): one free_port for tests and benchmarks.
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
from support import free_port  # noqa: E402,F401


def start_simulator(port, log, latency=0):
    """The simulator in a process of its own, as in production; returns once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port), "--token", TOKEN,
                             "--latency", str(latency), "--log", str(log)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening" in line, line
    return proc


def stop(proc, timeout=30):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
