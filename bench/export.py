"""`mailer mailings export` of a million messages (run by hand, not in tests):

    .venv/bin/python bench/export.py [--rebuild]

Builds once, into a cached file under /tmp (--rebuild makes it again), set-based: 1,000,000 clients,
mailing 1 with a message for each (60% sent with their time and text, 10% failed, 10% in doubt, the
rest pending; one client in a thousand deleted since, so its message has no client id) and mailing 2
with 100,000 pending messages, created between mailing 1's audience and its last 1,000 messages (so
mailing 1's ids are not contiguous, as when clients are added while it runs).

Then measures, each figure with its goal and a comparison from the same run: the wall time of
`mailer mailings export 1 FILE` (goal < 15 s for the million rows) against `sqlite3 -csv` writing the
same columns raw (no time zone, no defusing: what the database alone costs); its peak RSS, sampled
every 0.1 s from /proc (goal < 150 MB, and flat: the same for the 100,000 messages of mailing 2 and
for the million of mailing 1, and the same at a tenth, half and nine tenths of the run).
"""
import argparse
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path("/tmp/mailer-export-bench-v1.db")
N = 1_000_000
CTE = "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
MAILING = ("INSERT INTO mailing (id, text, start_at, end_at, state, state_reason, started_at, created_at, "
           "updated_at, spread) VALUES (?, 'Hello', datetime('now', '-1 hour'), datetime('now', '+1 day'), "
           "'running', '', datetime('now', '-1 hour'), datetime('now', '-2 hours'), datetime('now', '-2 hours'), 0)")


def build(path):
    import models

    started = time.perf_counter()
    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    models.open_database(f"sqlite:///{tmp}").close()
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute("PRAGMA synchronous = off")
    with conn:
        conn.execute(CTE + "INSERT INTO client (phone, operator, tag, tz, created_at) SELECT printf('79%09d', i), "
                           "'900', 'vip', 'Europe/Moscow', '2026-01-01 00:00:00' FROM seq", (N,))
        conn.execute("INSERT INTO client_tags (client_id, tag) SELECT id, tag FROM client WHERE tag <> '' ORDER BY id")  # as an import writes them (0012)
        for mailing_id in (1, 2):
            conn.execute(MAILING, (mailing_id,))
        # sent over about twenty minutes (800 a second), with microseconds as the engine stores them
        conn.execute("""
            INSERT INTO message (mailing_id, client_id, phone, text, status, created_at, sent_at, attempts,
                                 last_error, next_attempt_at, in_doubt)
            SELECT 1, c.id, c.phone, CASE WHEN c.id % 10 < 8 THEN 'Hello, spring sale: 20% off' END,
                   CASE WHEN c.id % 10 < 6 THEN 'sent' WHEN c.id % 10 = 6 THEN 'failed'
                        WHEN c.id % 10 = 7 THEN 'unknown' ELSE 'pending' END,
                   '2026-01-01 10:00:00.123456',
                   CASE WHEN c.id % 10 < 6 THEN strftime('%Y-%m-%d %H:%M:%f', '2026-01-01 10:00:00',
                                                         '+' || (c.id / 800.0) || ' seconds') END,
                   CASE WHEN c.id % 10 < 8 THEN 1 ELSE 0 END,
                   CASE WHEN c.id % 10 = 6 THEN 'HTTP 400: {"code": 3, "message": "number blocked"}'
                        WHEN c.id % 10 = 7 THEN 'read timeout after 10 s' ELSE '' END,
                   '2026-01-01 10:00:00.123456', 0
            FROM client c WHERE c.id <= ? ORDER BY c.id""", (N - 1000,))
        conn.execute("INSERT INTO message (mailing_id, client_id, phone, status, created_at, attempts, last_error, "
                     "next_attempt_at, in_doubt) SELECT 2, id, phone, 'pending', '2026-01-01 10:30:00', 0, '', "
                     "'2026-01-01 10:30:00', 0 FROM client WHERE id <= 100000 ORDER BY id")
        conn.execute("INSERT INTO message (mailing_id, client_id, phone, status, created_at, attempts, last_error, "
                     "next_attempt_at, in_doubt) SELECT 1, id, phone, 'pending', '2026-01-01 11:00:00', 0, '', "
                     "'2026-01-01 11:00:00', 0 FROM client WHERE id > ? ORDER BY id", (N - 1000,))
        conn.execute("UPDATE message SET client_id = NULL WHERE mailing_id = 1 AND client_id % 1000 = 3")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    tmp.rename(path)
    return time.perf_counter() - started


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_export(mailing_id, out):
    """Wall seconds and the RSS samples (MB) of `mailer mailings export mailing_id out`."""
    env = {**os.environ, "MAILER_DB_URL": f"sqlite:///{CACHE}", "MAILER_TZ": "Europe/Moscow",
           "MAILER_LOG_FILE": "/dev/null"}
    started = time.perf_counter()
    proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "mailer"), "mailings", "export", str(mailing_id), str(out)],
                            env=env, cwd=ROOT)
    samples = []
    while proc.poll() is None:
        rss = rss_mb(proc.pid)
        if rss is not None:
            samples.append(rss)
        time.sleep(0.1)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.returncode
    return elapsed, samples


def run_sqlite3(out):
    started = time.perf_counter()
    with open(out, "w") as fh:
        subprocess.run(["sqlite3", "-csv", "-header", str(CACHE),
                        "SELECT id, phone, client_id, status, attempts, created_at, sent_at, next_attempt_at, "
                        "last_error, text FROM message WHERE mailing_id = 1 ORDER BY client_id, id"],
                       stdout=fh, check=True)
    return time.perf_counter() - started


def at(samples, share):
    return samples[min(len(samples) - 1, int(len(samples) * share))] if samples else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if args.rebuild or not CACHE.exists():
        print(f"building {CACHE} …", flush=True)
        print(f"  built in {build(CACHE):.1f} s", flush=True)
    out = Path("/tmp/mailer-export-bench.csv")
    small_time, small = run_export(2, out)
    small_rows = sum(1 for _ in open(out, encoding="utf-8")) - 1
    big_time, big = run_export(1, out)
    big_rows = sum(1 for _ in open(out, encoding="utf-8")) - 1
    size = out.stat().st_size
    raw_time = run_sqlite3(out)
    out.unlink()
    print(f"mailer mailings export, {big_rows:,} rows ({size / 1e6:.0f} MB): {big_time:.1f} s "
          f"= {big_rows / big_time:,.0f} rows/s (goal < 15 s); sqlite3 -csv of the same columns, raw: "
          f"{raw_time:.1f} s ({big_time / raw_time:.1f}x)")
    print(f"peak RSS: {max(big):.0f} MB for {big_rows:,} rows, {max(small):.0f} MB for {small_rows:,} "
          f"({small_time:.1f} s) (goal < 150 MB, flat); during the million: {at(big, 0.1):.0f} MB at a tenth, "
          f"{at(big, 0.5):.0f} at half, {at(big, 0.9):.0f} at nine tenths")


if __name__ == "__main__":
    main()
