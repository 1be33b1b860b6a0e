"""Benchmark: the consumer's memory while it sends one mailing to a large audience.

    .venv/bin/python bench/consumer_memory.py [--clients 1000000] [--seconds 120] [--keep]

Writes `--clients` demo clients to a CSV file and imports it (service.import_clients), starts the
gateway simulator (0 ms latency) and a consumer as separate processes, creates one mailing over all
the clients starting now, then samples the consumer's RSS (VmRSS in /proc/PID/status) every 0.5 s
until every message is sent or `--seconds` pass. Prints the peak RSS, the RSS at 10% / 50% / the end
of that run, VmHWM (the kernel's high-water mark), and how many messages were sent in the time.
A million clients will not all be sent in 120 s; the point is that memory stays flat while sending.
MB here is 2**20 bytes.
"""
import argparse
import os
import shutil
import subprocess
import sys
import time

from harness import ROOT, TOKEN, free_port, open_service, start_simulator, stop, work_dir








def status_mb(pid, field):
    """VmRSS / VmHWM of a process in MB (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def at_fraction(samples, fraction):
    """The RSS sampled nearest to `fraction` of the run."""
    target = samples[-1][0] * fraction
    return min(samples, key=lambda s: abs(s[0] - target))[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=120, help="time limit for the sending run")
    parser.add_argument("--keep", action="store_true", help="keep the temp work dir")
    args = parser.parse_args()

    work = work_dir("mailer-bench-mem-")
    import models
    import service
    from service.demo import demo_csv
    open_service()
    csv_path = work / "clients.csv"
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        shutil.copyfileobj(demo_csv(args.clients, seed=1), fh)
    t0 = time.perf_counter()
    imported = service.import_clients(csv_path).imported
    import_s = time.perf_counter() - t0

    sim = consumer = None
    samples, sent, hwm = [], 0, None
    try:
        port = free_port()
        sim = start_simulator(port, work / "accepted.jsonl")
        env = {**os.environ, "PROBE_URL": f"http://127.0.0.1:{port}/v1", "PROBE_TOKEN": TOKEN,
               "PYTHONPATH": str(ROOT)}
        consumer = subprocess.Popen([sys.executable, "-m", "app", "consumer"], cwd=ROOT, env=env,
                                    stdout=open(work / "consumer.log", "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not models.Heartbeat.select().exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert models.Heartbeat.select().exists(), "the consumer did not start"
        time.sleep(2)  # the consumer is up and idle
        idle = status_mb(consumer.pid, "VmRSS")

        t0 = time.perf_counter()
        mailing = service.create_mailing(text="memory benchmark", start="now", end="+1h")
        create_s = time.perf_counter() - t0
        sent_sql = "SELECT count(*) FROM message WHERE mailing_id = ? AND status = 'sent'"
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < args.seconds and consumer.poll() is None:
            rss = status_mb(consumer.pid, "VmRSS")
            if rss is not None:
                samples.append((time.monotonic() - started, rss))
            n += 1
            if n % 4 == 0:  # every 2 s
                sent = models.db.execute_sql(sent_sql, (mailing.id,)).fetchone()[0]
                if sent >= imported:
                    break
            time.sleep(max(0.0, started + n * 0.5 - time.monotonic()))
        run_s = time.monotonic() - started
        hwm = status_mb(consumer.pid, "VmHWM")
        sent = models.db.execute_sql(sent_sql, (mailing.id,)).fetchone()[0]
    finally:
        stop(consumer)
        stop(sim)

    if not samples:
        sys.exit(f"no RSS sample: the consumer exited early (log: {work / 'consumer.log'})")
    peak = max(rss for _, rss in samples)
    print(f"clients: {imported:,} imported in {import_s:.1f} s; mailing created (audience materialized) "
          f"in {create_s:.1f} s")
    print(f"consumer RSS idle before the mailing: {idle:.1f} MB")
    print(f"sampled every 0.5 s for {run_s:.1f} s ({len(samples)} samples)")
    print(f"peak RSS: {peak:.1f} MB   (VmHWM at the end: {hwm:.1f} MB)" if hwm is not None
          else f"peak RSS: {peak:.1f} MB   (VmHWM: consumer gone)")
    print(f"RSS at 10%: {at_fraction(samples, 0.1):.1f} MB, at 50%: {at_fraction(samples, 0.5):.1f} MB, "
          f"at end: {samples[-1][1]:.1f} MB")
    print(f"sent: {sent:,} of {imported:,} in {run_s:.1f} s ({sent / run_s:,.0f} sends/s)")
    print("goal: peak < 200 MB, flat")
    if args.keep:
        print(f"work dir: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
