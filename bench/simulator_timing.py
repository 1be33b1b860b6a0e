"""Benchmark: how promptly the gateway simulator and a client give up, stop and start.

    .venv/bin/python bench/simulator_timing.py [--runs 5]

The wall-clock limits that tests/test_simulator.py held (a 0.3 s client timeout returning within
0.9 s, stop() within 0.9 s while a handler hangs and within 1 s mid-trickle, the listening line of
`python -m simulator` within 2.5 s) are measured here; the tests keep the behaviour with bounds a
loaded machine cannot break. Each figure comes with its comparison from the same run: the configured
timeout, the stop() of an idle simulator, the start of a bare `python -c pass`.
"""
import argparse
import select
import socket
import statistics
import subprocess
import sys
import time

import requests

from harness import ROOT, TOKEN

from simulator import GatewaySimulator

BODY = {"id": 1, "phone": 79001234567, "text": "x"}


def session():
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    return s


def client_timeout(read_timeout=0.3):
    """A client with a 0.3 s timeout against a simulator that hangs for 30 s."""
    sim = GatewaySimulator(token=TOKEN, timeout_rate=1.0, hang=30.0).start()
    try:
        with session() as s:
            t0 = time.perf_counter()
            try:
                s.post(f"{sim.url}/send/1", json=BODY, timeout=read_timeout)
            except requests.exceptions.Timeout:
                pass
            else:
                raise AssertionError("the hanging simulator answered")
            return time.perf_counter() - t0
    finally:
        sim.stop()


def stop_while_hanging():
    sim = GatewaySimulator(token=TOKEN, timeout_rate=1.0, hang=30.0).start()
    with session() as s:
        try:
            s.post(f"{sim.url}/send/1", json=BODY, timeout=0.2)
        except requests.exceptions.Timeout:
            pass
    t0 = time.perf_counter()
    sim.stop()
    return time.perf_counter() - t0


def stop_mid_trickle():
    sim = GatewaySimulator(token=TOKEN, trickle_rate=1.0, trickle_interval=0.2).start()
    body = b'{"id": 4, "phone": 79001234567, "text": "x"}'
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as conn:
        conn.sendall(f"POST /v1/send/4 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        assert conn.recv(1) == b"H"  # the trickle has begun
        t0 = time.perf_counter()
        sim.stop()
        return time.perf_counter() - t0


def stop_idle():
    sim = GatewaySimulator(token=TOKEN).start()
    with session() as s:
        s.post(f"{sim.url}/send/1", json=BODY, timeout=5)
    t0 = time.perf_counter()
    sim.stop()
    return time.perf_counter() - t0


def listening_line():
    """`python -m simulator` started to its listening line on stdout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "--port", "0", "--token", "t"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready and b"listening" in proc.stdout.readline()
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def bare_python():
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, timeout=30)
    return time.perf_counter() - t0


def figure(samples):
    return f"median {statistics.median(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = range(args.runs)
    rows = [
        ("client 0.3 s timeout against a 30 s hang", [client_timeout() for _ in runs], "< 900 ms",
         0.9, "the timeout itself: 300 ms"),
        ("stop() while a handler hangs", [stop_while_hanging() for _ in runs], "< 900 ms", 0.9, None),
        ("stop() mid-trickle", [stop_mid_trickle() for _ in runs], "< 1000 ms", 1.0, None),
        ("`python -m simulator` to its listening line", [listening_line() for _ in runs], "< 2500 ms",
         2.5, None),
    ]
    idle = [stop_idle() for _ in runs]
    bare = [bare_python() for _ in runs]
    comparisons = {1: f"stop() of an idle simulator: {figure(idle)}",
                   2: f"stop() of an idle simulator: {figure(idle)}",
                   3: f"`python -c pass`: {figure(bare)}"}
    print(f"{args.runs} runs each")
    for i, (what, samples, goal, limit, comparison) in enumerate(rows):
        met = "met" if max(samples) < limit else "NOT met"
        print(f"{what}: {figure(samples)}   (goal: {goal}; {met})")
        print(f"    compare: {comparison or comparisons[i]}")


if __name__ == "__main__":
    main()
