"""`make bench`: the performance benchmarks of issue 15, one after the other, each printing its figure,
its goal and the machine's comparison figure from the same run; their output, with the machine and
the date, replaces the generated part of bench/RESULTS.md (between its two markers). The analysis
below the markers (profiles, what was tried, what would close a missed goal) is written by hand.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--no-write]
"""
import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- make bench: generated from here -->", "<!-- make bench: generated until here -->"

# (name, what it measures, arguments to the Python interpreter, time limit in seconds)
BENCHMARKS = [
    ("sends", "1. a mailing of 20,000 delivered end to end through nginx, against a bare requests loop",
     ["bench/send.py", "--clients", "20000"], 300),
    ("storage", "3-4. import, a mailing over 1,000,000 clients, its statistics and all mailings'",
     ["bench/storage.py"], 600),
    ("import-wide", "3. import of 1,000,000 clients with a name, 3 attributes and 0-3 more tags",
     ["bench/storage.py", "--import-only", "--tags", "--personal"], 600),
    ("cap", "5. two consumers on SQLite under MAILER_RATE=200, over a minute at nginx's clock",
     ["bench/cap.py", "--rate", "200", "--seconds", "60"], 400),
    ("scale-out", "6. one consumer against two on PostgreSQL + Redis, nginx as the gateway",
     ["bench/scale_out.py", "--clients", "20000"], 600),
]


def machine():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, SQLite "
            f"{sqlite3.sqlite_version}, load average {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")


def run(name, args, limit):
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=limit)
        output = done.stdout.strip() + (f"\n(exit {done.returncode}: {done.stderr.strip()[-400:]})"
                                        if done.returncode else "")
    except subprocess.TimeoutExpired:
        output = f"(stopped after {limit} s)"
    lines = [line for line in output.splitlines() if not line.startswith("work dir:")]
    return "\n".join(lines), time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=[b[0] for b in BENCHMARKS])
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "?"
    block = [BEGIN, "## Latest `make bench`", "",
             f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit}; machine: {machine()} "
             "at the start. Every benchmark shares the cores with its consumer and gateway; compare the "
             "ratios printed, taken in the same run, not absolute figures between runs.", ""]
    for name, what, argv, limit in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"== {name}: {what}", flush=True)
        output, seconds = run(name, argv, limit)
        print(output, flush=True)
        block += [f"### {what}", f"`.venv/bin/python {' '.join(argv)}` ({seconds:.0f} s)", "", "```", output,
                  "```", ""]
    block.append(END)
    if args.no_write:
        return
    text = RESULTS.read_text()
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + "\n".join(block) + rest.split(END, 1)[1]
    else:  # first run: after the title
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n" + "\n".join(block) + "\n" + rest
    RESULTS.write_text(text)
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
