"""Benchmarks 2-4: importing 1,000,000 clients from CSV, creating a mailing over all of them, and the
counts by status of a mailing of 1,000,000 messages (and of all mailings), warm, from the counters
the database keeps (domain.counts), against the GROUP BY over the messages in the same run.

    .venv/bin/python bench/storage.py [--clients 1000000] [--personal] [--tags] [--import-only]

--personal imports a file with a name and three attribute columns (personal texts), and creates the
mailing with a text naming them (its dry run's longest rendering timed too).
--tags adds the `tags` column (issue 13): per row none, one, two or three more tags, in turn.
"""
import argparse
import statistics
import time

from harness import work_dir


def timed(fn, repeat=1):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times)


CITIES = ("Москва", "Омск", "Tver", "Saint Petersburg", "Нижний Новгород", "")
NAMES = ("Анна", "Bob", "Екатерина", "Christopher", "", "Ли")


def personal_csv(plain):
    """The demo file with a name and three attribute columns (some cells empty)."""
    lines = plain.getvalue().splitlines()
    out = [lines[0] + ",name,city,last_order,size"]
    for i, line in enumerate(lines[1:]):
        out.append(f"{line},{NAMES[i % 6]},{CITIES[i % 5]},A-{i},{'SML'[i % 3] if i % 4 else ''}")
    return "\n".join(out) + "\n"


def bare_load(csv_path, db_path):
    """The least any import of this file takes here: its rows as the csv module reads them, by one
    executemany into a table without indexes (no checks, nothing else), timed like the import."""
    import csv
    import sqlite3

    def load():
        db_path.unlink(missing_ok=True)
        con = sqlite3.connect(db_path)
        with open(csv_path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader)
            con.execute(f"CREATE TABLE bare ({', '.join(f'c{i}' for i in range(len(header)))})")
            con.executemany(f"INSERT INTO bare VALUES ({', '.join('?' * len(header))})", reader)
        con.commit()
        con.close()
    return timed(load)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1_000_000)
    parser.add_argument("--personal", action="store_true", help="a name and three attributes a client")
    parser.add_argument("--tags", action="store_true", help="a tags column: 0-3 more tags a client")
    parser.add_argument("--import-only", action="store_true", help="benchmark 2 alone")
    args = parser.parse_args()
    work = work_dir("mailer-bench-")
    import models
    import service
    from domain import counts, stats
    from service.demo import demo_csv
    models.open_database()

    csv_path = work / "clients.csv"
    text = "bench"
    data = demo_csv(args.clients, seed=3)
    data = personal_csv(data) if args.personal else data.getvalue()
    if args.tags:
        more = ("", "gold", "gold;new", "sale;gold;new")
        lines = data.splitlines()
        data = "\n".join([lines[0] + ",tags"] + [f"{line},{more[i % 4]}" for i, line in enumerate(lines[1:])]) + "\n"
    if args.personal:
        text = "{name|клиент}, ваш заказ {attr.last_order} ждёт в {attr.city} ({attr.size|M})"
    csv_path.write_text(data)
    report, import_s = timed(lambda: service.import_clients(csv_path))
    assert report.imported == args.clients, report.as_dict()["rejected"][:3]
    rate = args.clients / import_s
    floor_s = bare_load(csv_path, work / "bare.db")
    print(f"2. import {args.clients:,} clients from CSV{' with a name and 3 attributes' if args.personal else ''}"
          f"{' and 0-3 more tags' if args.tags else ''}: "
          f"{import_s:.2f} s = {rate:,.0f} rows/s (goal >= 200,000 rows/s)"
          + (f"; {models.ClientTag.select().count():,} tags" if args.tags else ""))
    print(f"   comparison, same run: the file straight from csv.reader into a table without indexes "
          f"(sqlite3 executemany, no checks) {floor_s:.2f} s = {args.clients / floor_s:,.0f} rows/s; "
          f"the import takes {import_s / floor_s:.2f}x that")
    if args.import_only:
        return
    if args.personal:
        from domain import mailings
        _, preview_s = timed(lambda: mailings.preview_mailing(text=text, start="now", end="+1d"))
        print(f"   dry run of a personal text over {args.clients:,} clients (its longest rendering): "
              f"{preview_s * 1000:.0f} ms")

    # The service with no waker (its default): no consumer is told to start sending here.
    mailing, create_s = timed(lambda: service.create_mailing(text=text, start="now", end="+1d"))
    total = models.Message.select().where(models.Message.mailing == mailing.id).count()
    print(f"3. create a mailing over {total:,} matching clients: {create_s * 1000:.0f} ms (goal < 2,000 ms)")

    service.create_mailing(text="small", start="now", end="+1d", tag="vip")
    # Give the big mailing a realistic spread of statuses.
    models.db.execute_sql("UPDATE message SET status = 'sent' WHERE mailing_id = ? AND id % 10 < 7",
                          (mailing.id,))
    models.db.execute_sql("UPDATE message SET status = 'failed' WHERE mailing_id = ? AND id % 10 = 7",
                          (mailing.id,))
    stats.mailing_stats(mailing.id)  # warm
    one, one_s = timed(lambda: counts.status_counts([mailing.id]), repeat=15)
    every, all_s = timed(counts.status_counts, repeat=15)
    scanned, scan_one_s = timed(lambda: counts.status_counts_scanned([mailing.id]), repeat=7)
    scanned_all, scan_all_s = timed(counts.status_counts_scanned, repeat=7)
    assert one == scanned and every == scanned_all and sum(one[mailing.id].values()) == total
    row, row_s = timed(lambda: stats.mailing_stats(mailing.id), repeat=15)
    assert row[0]["total"] == total
    rows, rows_s = timed(stats.mailing_stats, repeat=15)
    print(f"4. counts by status of one mailing of {total:,} messages: {one_s * 1000:.2f} ms; of all "
          f"{len(every)} mailings: {all_s * 1000:.2f} ms (goal < 10 ms each, warm; median of 15)")
    print(f"   comparison, same run: the GROUP BY over the messages {scan_one_s * 1000:.1f} ms / "
          f"{scan_all_s * 1000:.1f} ms ({scan_one_s / one_s:,.0f}x / {scan_all_s / all_s:,.0f}x the counters); "
          f"the whole statistics read model (`mailer mailings stats`) {row_s * 1000:.1f} ms / "
          f"{rows_s * 1000:.1f} ms")
    print(f"work dir: {work} ({sum(f.stat().st_size for f in work.iterdir()) / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
