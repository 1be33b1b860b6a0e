"""Benchmark: how soon sending resumes after storage refused every write for 8 s.

    .venv/bin/python bench/recovery.py [--seconds 8] [--clients 4000]

The scenario of tests/test_faults.py's storage-fault test (which held "resumed within 5 s" and now
keeps the behaviour: sending resumes by itself, nothing lost or sent twice): a consumer sending to
the gateway simulator, another process holding the database's write lock past the consumer's 1 s
busy timeout for 8 s, then letting go. Measured at the gateway: from the release to the next
accepted send. The comparison, from the same run: the longest gap between accepted sends in the
second before the fault, when storage worked.
"""
import argparse
import shutil
import sqlite3
import time

import harness  # noqa: F401  (puts the checkout and tests/ on sys.path)
from harness import work_dir

from simulator import GatewaySimulator, read_log
from support import TOKEN, Env, phones, wait_for


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the write lock is held")
    parser.add_argument("--clients", type=int, default=20000)
    args = parser.parse_args()

    work = work_dir("mailer-bench-recovery-")
    world = Env(work)
    sim = GatewaySimulator(token=TOKEN, latency=(5, 20), log_path=str(work / "accepted.jsonl")).start()
    world.use_gateway(sim)
    try:
        world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(args.clients)])
        world.start_consumer(MAILER_DB_TIMEOUT="1")
        world.mailer("mailings", "create", "--text", "t", "--start", "now", "--end", "+10m")
        wait_for(lambda: len(read_log(sim.log_path)) >= 300, timeout=30, message="sending")
        time.sleep(1)
        holder = sqlite3.connect(world.db_path, timeout=10)
        holder.execute("BEGIN EXCLUSIVE")
        began = time.time()
        time.sleep(args.seconds)
        holder.rollback()
        holder.close()
        cleared = time.time()
        wait_for(lambda: any(e["received_at"] > cleared for e in read_log(sim.log_path)), timeout=60,
                 message="sending resumed (or all was sent before the fault: use more --clients)")
        received = sorted(e["received_at"] for e in read_log(sim.log_path))
    finally:
        for proc in world.consumers:
            world.stop(proc)
        sim.stop()
    resumed = min(t for t in received if t > cleared) - cleared
    before = [t for t in received if began - 1 <= t < began]
    gap = max((b - a for a, b in zip(before, before[1:])), default=float("nan"))
    during = sum(1 for t in received if began + 1.5 < t < cleared)
    print(f"write lock held {args.seconds:.0f} s: sending resumed {resumed * 1000:.0f} ms after its release "
          f"(goal: < 5000 ms; {'met' if resumed < 5 else 'NOT met'}); {during} sends accepted while it was held")
    print(f"compare: longest gap between sends in the second before the fault: {gap * 1000:.0f} ms "
          f"({len(before)} sends)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
