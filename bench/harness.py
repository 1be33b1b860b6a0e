"""What the benchmarks share: the gateway simulator started as its own process, nginx as a gateway
that is never the bottleneck, free ports, and stopping processes within a bounded time."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
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


NGINX_CONF = """daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format probe '$msec $request_uri $status';
    access_log {log} probe buffer=64k flush=1s;
    client_body_temp_path {work}/body;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location /v1/send/ {{
            default_type application/json;
            return 200 '{{"code": 0, "message": "OK"}}';
        }}
    }}
}}
"""


def start_nginx(port, work):
    """nginx (Debian's nginx-light) answering every POST {base}/send/{msgId} with the probe's success,
    its access log (`$msec $request_uri $status`) counting what it accepted: a gateway far faster than
    the Python client, so a send benchmark measures the sender. Returns (process, access log path)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        raise SystemExit("nginx is not installed: apt-get install nginx-light")
    root = Path(work) / "nginx"
    root.mkdir(exist_ok=True)
    log = root / "access.log"
    conf = root / "nginx.conf"
    conf.write_text(NGINX_CONF.format(work=root, log=log, port=port))
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(root), "-e", str(root / "nginx-error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, log
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"nginx exited: {(root / 'nginx-error.log').read_text()[-500:]}")
            time.sleep(0.05)
    stop(proc)
    raise SystemExit("nginx did not listen within 10 s")


def accepted_by_nginx(log):
    """msgIds nginx answered 200, from its access log (one line per request)."""
    ids = []
    for line in Path(log).read_text().splitlines():
        _, uri, status = line.split()
        if status == "200":
            ids.append(int(uri.rsplit("/", 1)[1]))
    return ids
