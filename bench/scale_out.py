"""Benchmark 6: scale-out on PostgreSQL and Redis, one consumer against two, the gateway not the
bottleneck (nginx answering the probe's success).

    .venv/bin/python bench/scale_out.py [--clients 20000]

Starts PostgreSQL and Redis on 127.0.0.1 (tests/servers.py, Debian's packages), nginx as the gateway,
imports the clients, then sends one mailing to all of them with one consumer and another with two,
timing each from its creation to its last send; prints both rates and their ratio (goal: two deliver
>= 1.6x one). nginx's access log judges: every message accepted once.
"""
import argparse
import os
import subprocess
import sys
import time

from harness import ROOT, TOKEN, accepted_by_nginx, free_port, start_nginx, stop, work_dir


def consumers(count, env, work):
    return [subprocess.Popen([sys.executable, "-m", "app", "consumer"], cwd=ROOT, env=env,
                             stdout=open(work / f"consumer-{count}-{i}.log", "w"), stderr=subprocess.STDOUT)
            for i in range(count)]


def sent(models, mailing_id):
    return models.db.execute_sql("SELECT count(*) FROM message WHERE mailing_id = %s AND status = 'sent'",
                                 (mailing_id,)).fetchone()[0]


def run(count, total, env, work, models, service):
    procs = consumers(count, env, work)
    try:
        time.sleep(3)  # up and idle
        started = time.monotonic()
        mailing = service.create_mailing(text=f"scale out x{count}", start="now", end="+1h")
        deadline = time.monotonic() + 600
        while sent(models, mailing.id) < total and time.monotonic() < deadline:
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        done = sent(models, mailing.id)
    finally:
        for proc in procs:
            stop(proc)
    return mailing.id, done, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=20_000)
    args = parser.parse_args()
    work = work_dir("mailer-bench-")
    sys.path.insert(0, str(ROOT / "tests"))
    from servers import start_postgres, start_redis
    postgres, redis = start_postgres(), start_redis()
    nginx = None
    try:
        postgres.create_database("bench")
        port = free_port()
        nginx, nginx_log = start_nginx(port, work)
        env = {**os.environ, "MAILER_DB_URL": postgres.url("bench"), "MAILER_QUEUE_URL": redis.url(0),
               "PROBE_URL": f"http://127.0.0.1:{port}/v1", "PROBE_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
        os.environ.update(MAILER_DB_URL=env["MAILER_DB_URL"], MAILER_QUEUE_URL=env["MAILER_QUEUE_URL"])
        import models
        import service
        import tasks
        from service.demo import demo_csv
        models.open_database()
        service.use_waker(tasks.QueueWaker())
        report = service.import_clients(demo_csv(args.clients, seed=1))
        assert report.imported == args.clients, report.as_dict()["rejected"][:3]
        one_id, one_sent, one_s = run(1, args.clients, env, work, models, service)
        two_id, two_sent, two_s = run(2, args.clients, env, work, models, service)
        stop(nginx)
        nginx = None
        ids = accepted_by_nginx(nginx_log)
        assert len(ids) == len(set(ids)) == one_sent + two_sent, (len(ids), len(set(ids)))
        owners = dict(models.db.execute_sql(
            "SELECT owner, count(*) FROM attempt a JOIN message m ON m.id = a.message_id "
            "WHERE m.mailing_id = %s AND a.outcome = 'sent' GROUP BY owner", (two_id,)).fetchall())
    finally:
        stop(nginx)
        redis.stop()
        postgres.stop()
    one, two = one_sent / one_s, two_sent / two_s
    print(f"6. scale-out on PostgreSQL + Redis, nginx as the gateway, {args.clients:,} messages a run")
    print(f"   one consumer: {one_sent:,} sent in {one_s:.1f} s = {one:,.0f}/s; two consumers: {two_sent:,} in "
          f"{two_s:.1f} s = {two:,.0f}/s (shares {sorted(owners.values())})")
    print(f"   two / one: {two / one:.2f}x (goal >= 1.6x); every message accepted once by the gateway")


if __name__ == "__main__":
    main()
