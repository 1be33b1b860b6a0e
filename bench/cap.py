"""Benchmark 5: two consumers under MAILER_RATE deliver at the cap, over a minute.

    .venv/bin/python bench/cap.py [--rate 200] [--seconds 60]

On SQLite (the product's default), nginx as the gateway (never the bottleneck), two consumers. First
the comparison: the same two consumers without a cap send a mailing to 6,000 clients (what they can
do here, so the cap is what holds them back, not the machine). Then two consumers with
MAILER_RATE=--rate send a mailing to rate x (seconds + 20) clients; nginx's access log times each
arrival ($msec, nginx's own clock): the rate over --seconds from 5 s after the first arrival (the
buckets start full: the first second may carry a burst of one second's worth) must be the cap +-5%.
Every message is accepted once.
"""
import argparse
import io
import os
import subprocess
import sys
import time
from pathlib import Path

from harness import ROOT, TOKEN, free_port, open_service, start_nginx, stop, work_dir

FREE = 6_000
WARM_UP = 5.0  # seconds after the first arrival before the minute is counted


def clients_csv(free, capped):
    out = io.StringIO()
    out.write("phone,operator,tag,tz\n")
    for i in range(free):
        out.write(f"7900{i:07d},,free,UTC\n")
    for i in range(capped):
        out.write(f"7916{i:07d},,capped,UTC\n")
    out.seek(0)
    return out


def arrivals(log):
    """msgId -> when nginx answered it 200 (its clock), from its access log."""
    seen = {}
    for line in Path(log).read_text().splitlines():
        stamp, uri, status = line.split()
        if status == "200":
            msg_id = int(uri.rsplit("/", 1)[1])
            if msg_id in seen:
                raise SystemExit(f"message {msg_id} accepted twice")
            seen[msg_id] = float(stamp)
    return seen


def run_mailing(tag, total, env, work, extra_env):
    import models
    import service
    procs = [subprocess.Popen([sys.executable, "-m", "app", "consumer"], cwd=ROOT, env={**env, **extra_env},
                              stdout=open(work / f"consumer-{tag}-{i}.log", "w"), stderr=subprocess.STDOUT)
             for i in range(2)]
    try:
        time.sleep(3)  # up and idle
        started = time.monotonic()
        mailing = service.create_mailing(text=f"cap bench {tag}", start="now", end="+1h", tag=tag)
        deadline = time.monotonic() + 900
        sql = "SELECT count(*) FROM message WHERE mailing_id = ? AND status = 'sent'"
        while models.db.execute_sql(sql, (mailing.id,)).fetchone()[0] < total and time.monotonic() < deadline:
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        ids = {row[0] for row in models.db.execute_sql("SELECT id FROM message WHERE mailing_id = ? AND "
                                                       "status = 'sent'", (mailing.id,))}
    finally:
        for proc in procs:
            stop(proc)
    return ids, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    capped = int(args.rate * (args.seconds + 20))
    work = work_dir()
    port = free_port()
    nginx, nginx_log = start_nginx(port, work)
    try:
        env = {**os.environ, "PROBE_URL": f"http://127.0.0.1:{port}/v1", "PROBE_TOKEN": TOKEN,
               "PYTHONPATH": str(ROOT)}
        env.pop("MAILER_RATE", None)
        open_service()
        import service
        report = service.import_clients(clients_csv(FREE, capped))
        assert report.imported == FREE + capped, report.as_dict()["rejected"][:3]
        free_ids, free_s = run_mailing("free", FREE, env, work, {})
        capped_ids, capped_s = run_mailing("capped", capped, env, work, {"MAILER_RATE": f"{args.rate:g}"})
    finally:
        stop(nginx)
    seen = arrivals(nginx_log)
    assert len(free_ids) == FREE and len(capped_ids) == capped, (len(free_ids), len(capped_ids))
    assert set(seen) == free_ids | capped_ids, "nginx and the database disagree on what was sent"
    times = sorted(seen[i] for i in capped_ids)
    start = times[0] + WARM_UP
    counted = sum(1 for t in times if start <= t < start + args.seconds)
    rate = counted / args.seconds
    off = (rate - args.rate) / args.rate * 100
    print(f"5. two consumers on SQLite under MAILER_RATE={args.rate:g}, nginx as the gateway")
    print(f"   without a cap: {FREE:,} sent in {free_s:.1f} s = {FREE / free_s:,.0f}/s (what they can do here)")
    print(f"   with the cap: {counted:,} arrivals in {args.seconds:g} s from {WARM_UP:g} s after the first "
          f"= {rate:.1f}/s, {off:+.1f}% (goal: the cap +-5%); {capped:,} sent in {capped_s:.1f} s; "
          f"every message accepted once")


if __name__ == "__main__":
    main()
