"""Benchmark 1: a mailing delivered end to end, against a bare requests loop at the same concurrency.

    .venv/bin/python bench/send.py --clients 20000                  # nginx as the gateway
    .venv/bin/python bench/send.py --clients 100000 --gateway simulator --latency 50

Starts the gateway and a consumer as separate processes (as in production), imports the clients,
creates a mailing starting now and times: the creation (audience materialized), and the sends from
the first accepted to the last, and from the creation to the last (end to end: create, materialize,
claim, mark, send, settle). Then runs a bare `requests.Session` loop with the same number of requests
in flight against the same gateway, and prints both rates and their ratio. The default gateway is
nginx answering the probe's success (bench/harness.py start_nginx: far faster than any Python client,
so the sender sets the pace); `--gateway simulator` for latency. The gateway's own record judges: every
message accepted once.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

import requests

from harness import (ROOT, TOKEN, accepted_by_nginx, free_port, open_service, start_nginx, start_simulator, stop,
                     work_dir)


def bare_loop(url, total, in_flight):
    """`total` POSTs with `in_flight` threads sharing one pooled session, like the dispatcher."""
    session = requests.Session()
    session.trust_env = False
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=in_flight)
    session.mount("http://", adapter)
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    counter = iter(range(10_000_000, 10_000_000 + total))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                msg_id = next(counter, None)
            if msg_id is None:
                return
            r = session.post(f"{url}/send/{msg_id}", json={"id": msg_id, "phone": 79000000000, "text": "x"},
                             timeout=(3, 10))
            assert r.status_code == 200

    threads = [threading.Thread(target=worker) for _ in range(in_flight)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total / (time.perf_counter() - started)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--latency", type=int, default=0, help="gateway latency in ms (simulator only)")
    parser.add_argument("--gateway", choices=("nginx", "simulator"), default="nginx")
    parser.add_argument("--bare-requests", type=int, default=None, help="default: min(clients, 20000)")
    args = parser.parse_args()

    work = work_dir("mailer-bench-")
    import models
    import service
    from domain import settings
    from service.demo import demo_csv
    open_service()
    port = free_port()
    if args.gateway == "nginx":
        sim, nginx_log = start_nginx(port, work)
    else:
        sim, nginx_log = start_simulator(port, work / "accepted.jsonl", args.latency), None
    url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "PROBE_URL": url, "PROBE_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    consumer = subprocess.Popen([sys.executable, "-m", "app", "consumer"], cwd=ROOT, env=env,
                                stdout=open(work / "consumer.log", "w"), stderr=subprocess.STDOUT)
    try:
        t0 = time.perf_counter()
        report = service.import_clients(demo_csv(args.clients, seed=1))
        import_s = time.perf_counter() - t0
        time.sleep(2)  # the consumer is up and idle
        t0 = time.perf_counter()
        mailing = service.create_mailing(text="benchmark", start="now", end="+1h")
        create_s = time.perf_counter() - t0
        sent_sql = "SELECT count(*), min(sent_at), max(sent_at) FROM message WHERE status = 'sent'"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = models.db.execute_sql(sent_sql).fetchone()[0]
            if done >= report.imported:
                break
            time.sleep(0.5)
        count, first, last = models.db.execute_sql(sent_sql).fetchone()
        first, last = (models.Message.sent_at.python_value(v) for v in (first, last))
        span = (last - first).total_seconds() or 1e-9
        created = models.Mailing.get_by_id(mailing.id).created_at
        pipeline_rate = count / span
        end_to_end = count / (last - created).total_seconds()
        in_flight = settings.current().dispatchers * settings.current().concurrency
    finally:
        stop(consumer)
    bare_total = args.bare_requests or min(args.clients, 20_000)
    bare_rate = bare_loop(url, bare_total, in_flight)
    stop(sim)
    if nginx_log is not None:  # the gateway's own record: every message once (and the bare loop's)
        accepted = [i for i in accepted_by_nginx(nginx_log) if i < 10_000_000]
        assert len(accepted) == len(set(accepted)) == count, (len(accepted), len(set(accepted)), count)

    print(f"clients: {args.clients}, gateway: {args.gateway}"
          + (f" (latency {args.latency} ms)" if args.gateway == "simulator" else "")
          + f", requests in flight: {in_flight}")
    print(f"import: {report.imported} clients in {import_s:.2f} s ({report.imported / import_s:,.0f} rows/s)")
    print(f"create mailing (audience of {count} materialized): {create_s * 1000:.0f} ms")
    print(f"pipeline: {count} sent in {span:.2f} s = {pipeline_rate:,.0f} sends/s "
          f"(from creation: {end_to_end:,.0f}/s)")
    print(f"bare requests.Session loop, {bare_total} POSTs: {bare_rate:,.0f} /s")
    print(f"ratio end to end / bare: {end_to_end / bare_rate:.0%} (goal >= 95%); "
          f"pipeline / bare: {pipeline_rate / bare_rate:.0%}")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
