"""Tests for the gateway simulator (simulator/): real HTTP against an in-process server on port 0."""

import base64
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from simulator import GatewaySimulator, build_parser, read_log
from support import ROOT, TOKEN, wait_for

PHONE = 79001234567


# requests honours *_PROXY from the environment, even for 127.0.0.1 (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("no_proxy")


@pytest.fixture
def session():
    with requests.Session() as s:
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        yield s


def send(s, sim, msg_id, phone=PHONE, text="hello", body=None, timeout=2.0, **kw):
    if body is None:
        body = {"id": msg_id, "phone": phone, "text": text}
    return s.post(f"{sim.url}/send/{msg_id}", json=body, timeout=timeout, **kw)


def raw_send(sim, msg_id, path="/v1/send/", timeout=2.0):
    """POST over a bare socket (every recv bounded by `timeout`); returns the socket."""
    body = json.dumps({"id": msg_id, "phone": PHONE, "text": "raw"}).encode()
    s = socket.create_connection(("127.0.0.1", sim.port), timeout=timeout)
    s.sendall(f"POST {path}{msg_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
              f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return s


def read_until_eof(s, limit=1 << 20):
    data = b""
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def make_jwt(payload):
    def enc(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(payload)}.c2lnbmF0dXJl"


# ------------------------------------------------------------------ success path

def test_success_and_log(simulator, session, tmp_path):
    log = tmp_path / "accepted.jsonl"
    sim = simulator(log_path=log)
    assert sim.url == f"http://127.0.0.1:{sim.port}/v1" and sim.port > 0
    before = time.time()
    r = send(session, sim, 7, text="привет")
    assert r.status_code == 200
    assert r.json() == {"code": 0, "message": "OK"}
    assert r.headers["Content-Length"] == str(len(r.content))
    # the log line is on disk by the time the answer arrives
    entries = read_log(log)
    assert len(entries) == 1
    e = entries[0]
    assert set(e) == {"id", "phone", "text", "received_at", "answered_at"}
    assert (e["id"], e["phone"], e["text"]) == (7, PHONE, "привет")
    assert before - 1 <= e["received_at"] <= e["answered_at"] <= time.time() + 1
    assert sim.accepted == [e]
    assert sim.accepted_ids() == [7]


def test_bare_path_and_v1_path(simulator, session):
    sim = simulator()
    base = f"http://127.0.0.1:{sim.port}"
    r1 = session.post(f"{base}/send/1", json={"id": 1, "phone": PHONE, "text": "a"}, timeout=2)
    r2 = session.post(f"{base}/v1/send/2", json={"id": 2, "phone": PHONE, "text": "b"}, timeout=2)
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert sim.accepted_ids() == [1, 2]


def test_unknown_paths_404_and_stats(simulator, session):
    sim = simulator()
    assert session.get(f"{sim.url}/nope", timeout=2).status_code == 404
    assert session.post(f"{sim.url}/sendx/1", json={}, timeout=2).status_code == 404
    assert session.get(f"{sim.url}/send/1", timeout=2).status_code == 405
    for _ in range(2):
        assert send(session, sim, 5).status_code == 200
    assert send(session, sim, 6).status_code == 200
    stats = session.get(f"http://127.0.0.1:{sim.port}/_sim/stats", timeout=2).json()
    assert stats["accepted"] == 3
    assert stats["unique_accepted_ids"] == 2
    assert stats["duplicate_accepted_ids"] == 1
    assert stats["by_status"]["200"] == 3
    assert stats["by_status"]["404"] == 2
    assert stats["requests"] == 6
    assert session.get(f"{sim.url}/_sim/stats", timeout=2).json()["accepted"] == 3


def test_keep_alive_reuses_one_connection(simulator, session):
    sim = simulator()
    for i in range(20):
        assert send(session, sim, i).status_code == 200
    assert sim.stats()["connections"] == 1


# ------------------------------------------------------------------ auth

def test_401_missing_and_wrong_token(simulator):
    sim = simulator()
    body = {"id": 1, "phone": PHONE, "text": "x"}
    url = f"{sim.url}/send/1"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}):
        r = requests.post(url, json=body, headers=headers, timeout=2)
        assert r.status_code == 401, headers
        assert r.json()["code"] == 401 and r.json()["message"]
    assert sim.accepted == []


def test_401_expired_jwt_even_if_equal(simulator):
    expired = make_jwt({"sub": "x", "exp": int(time.time()) - 60})
    sim = simulator(token=expired)
    r = requests.post(f"{sim.url}/send/1", json={"id": 1, "phone": PHONE, "text": "x"},
                      headers={"Authorization": f"Bearer {expired}"}, timeout=2)
    assert r.status_code == 401
    assert "expired" in r.json()["message"]
    assert sim.accepted == []


def test_valid_jwt_accepted(simulator):
    fresh = make_jwt({"sub": "x", "exp": int(time.time()) + 3600})
    sim = simulator(token=fresh)
    r = requests.post(f"{sim.url}/send/1", json={"id": 1, "phone": PHONE, "text": "x"},
                      headers={"Authorization": f"Bearer {fresh}"}, timeout=2)
    assert r.status_code == 200 and r.json()["code"] == 0


# ------------------------------------------------------------------ validation

@pytest.mark.parametrize("path_id, raw", [
    (2, json.dumps({"id": 3, "phone": PHONE, "text": "x"})),        # id mismatch
    (2, '{"id": 2, "phone": '),                                      # bad JSON
    (2, "\xff\xfe garbage"),                                         # not JSON at all
    (1, json.dumps({"id": True, "phone": PHONE, "text": "x"})),      # bool id
    (2, json.dumps({"id": 2, "phone": True, "text": "x"})),          # bool phone
    (2, json.dumps({"id": 2, "phone": str(PHONE), "text": "x"})),    # phone as string
    (2, json.dumps({"id": 2, "phone": PHONE, "text": 5})),           # text not str
    (2, json.dumps({"id": 2, "phone": PHONE})),                      # missing field
    (2, json.dumps([2, PHONE, "x"])),                                # not an object
    ("abc", json.dumps({"id": 2, "phone": PHONE, "text": "x"})),     # non-integer msgId
])
def test_400_bad_requests(simulator, session, path_id, raw):
    sim = simulator()
    r = session.post(f"{sim.url}/send/{path_id}", data=raw.encode("utf-8", "surrogateescape"),
                     headers={"Content-Type": "application/json"}, timeout=2)
    assert r.status_code == 400
    assert r.json()["code"] == 400
    assert sim.accepted == []


def test_auth_checked_before_body(simulator):
    sim = simulator()
    r = requests.post(f"{sim.url}/send/1", data=b"not json", timeout=2)
    assert r.status_code == 401


# ------------------------------------------------------------------ faults

def test_error_rate_one_gives_5xx(simulator, session):
    sim = simulator(error_rate=1.0, seed=1)
    codes = {send(session, sim, i).status_code for i in range(10)}
    assert codes <= {500, 503} and codes
    assert sim.accepted == []
    assert sim.stats()["faults"]["error"] == 10


def test_garbage_rate_one_never_ok(simulator, session):
    sim = simulator(garbage_rate=1.0, seed=2)
    bodies = set()
    for i in range(9):
        r = send(session, sim, i)
        assert r.status_code == 200
        bodies.add(r.content)
        try:
            data = r.json()
        except ValueError:
            continue
        assert not (isinstance(data, dict) and data.get("code") == 0)
    assert len(bodies) == 3  # html, busy, empty
    assert b"" in bodies
    assert sim.accepted == []


def test_throttle_429_retry_after(simulator, session):
    sim = simulator(throttle_rate=1.0, retry_after=3)
    r = send(session, sim, 1)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert r.json()["code"] == 429
    assert sim.accepted == []


def test_outage_window_then_recovery(simulator, session):
    sim = simulator(outages=[(0, 0.4)])
    r = send(session, sim, 1)
    assert r.status_code == 503
    assert sim.accepted == []
    codes = []
    wait_for(lambda: codes.append(send(session, sim, 1).status_code) or codes[-1] == 200, timeout=10,
             interval=0.05, message="the end of the outage")
    assert set(codes[:-1]) <= {503}
    assert sim.accepted_ids() == [1]


def test_outage_later_window(simulator, session):
    sim = simulator(outages=[(30, 60)])
    assert send(session, sim, 1).status_code == 200


def test_reject_phone(simulator, session):
    sim = simulator(reject_phones=[79990000000])
    for _ in range(3):  # permanently
        r = send(session, sim, 1, phone=79990000000)
        assert r.status_code == 400
        assert r.json() == {"code": 400, "message": "number blocked"}
    assert send(session, sim, 2).status_code == 200
    assert sim.accepted_ids() == [2]


def test_timeout_rate_client_times_out(simulator, session):
    # The simulator hangs for 30 s: the client's own 0.3 s timeout ends the wait, and stop() does not
    # wait for the hanging handler. How soon each returns: bench/simulator_timing.py.
    sim = simulator(timeout_rate=1.0, hang=30.0)
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        send(session, sim, 1, timeout=0.3)
    assert time.monotonic() - t0 < 15
    assert sim.accepted == []
    t1 = time.monotonic()
    sim.stop()
    assert time.monotonic() - t1 < 15


def test_timeout_closes_without_answer(simulator):
    sim = simulator(timeout_rate=1.0, hang=0.1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{sim.url}/send/1", json={"id": 1, "phone": PHONE, "text": "x"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
    assert sim.accepted == []


def test_latency_and_received_at(simulator, session, tmp_path):
    log = tmp_path / "log.jsonl"
    sim = simulator(latency=(200, 200), log_path=log)
    t0 = time.monotonic()
    assert send(session, sim, 1).status_code == 200
    assert time.monotonic() - t0 >= 0.19
    (e,) = read_log(log)
    assert e["answered_at"] - e["received_at"] >= 0.19


def test_seeded_faults_are_deterministic(simulator, session):
    def run(seed):
        sim = simulator(error_rate=0.3, throttle_rate=0.2, garbage_rate=0.2, seed=seed)
        out = [(send(session, sim, i).status_code, send(session, sim, i).content) for i in range(15)]
        sim.stop()
        return out
    a, b = run(42), run(42)
    assert a == b
    assert len({code for code, _ in a}) > 1


def test_trickle_sends_one_byte_at_a_time_after_logging(simulator, tmp_path):
    log = tmp_path / "log.jsonl"
    sim = simulator(trickle_rate=1.0, trickle_interval=0.2, log_path=log)
    before = time.time()
    with raw_send(sim, 4) as s:
        data, stamps = b"", []
        while len(data) < 4:
            chunk = s.recv(16)
            assert chunk, "connection closed mid-trickle"
            data += chunk
            stamps.append(time.monotonic())
        assert data == b"HTTP"
        assert len(stamps) == 4                       # one byte per read
        assert stamps[-1] - stamps[0] >= 3 * 0.2 * 0.9
        # accepted when it arrived, long before the answer is complete
        (e,) = read_log(log)
        assert e["id"] == 4 and before - 1 <= e["received_at"] <= before + 1
        assert sim.accepted_ids() == [4]
        assert sim.stats()["faults"]["trickle"] == 1
        t0 = time.monotonic()
        sim.stop()                                    # mid-trickle: the rest would take 20 s and more
        assert time.monotonic() - t0 < 10             # how soon: bench/simulator_timing.py


def test_trickle_outlasts_a_per_read_timeout(simulator, session):
    sim = simulator(trickle_rate=1.0, trickle_interval=0.005)
    t0 = time.monotonic()
    r = send(session, sim, 1, timeout=(1.0, 0.25))    # each read gets a byte within 0.25 s
    elapsed = time.monotonic() - t0
    assert r.status_code == 200 and r.json() == {"code": 0, "message": "OK"}
    assert elapsed > 0.5                              # the whole answer took longer than a read timeout
    assert "Date" in r.headers
    assert sim.accepted_ids() == [1]


@pytest.mark.parametrize("status", [302, 307])
def test_redirect_is_not_accepted(simulator, session, tmp_path, status):
    log = tmp_path / "log.jsonl"
    sim = simulator(redirect_rate=1.0, redirect_status=status, log_path=log)
    r = send(session, sim, 1, allow_redirects=False)
    assert r.status_code == status
    assert r.headers["Location"] == f"{sim.url}/elsewhere"
    r2 = session.get(r.headers["Location"], timeout=2)
    assert r2.status_code == 200 and r2.json() == {"code": 0, "message": "OK"}
    bare = session.post(f"http://127.0.0.1:{sim.port}/send/2", json={"id": 2, "phone": PHONE, "text": "x"},
                        allow_redirects=False, timeout=2)
    assert bare.headers["Location"] == f"http://127.0.0.1:{sim.port}/elsewhere"
    # a client that follows the redirect sees success, yet nothing was delivered
    followed = send(session, sim, 3)
    assert followed.status_code == 200 and followed.json()["code"] == 0
    assert followed.history and followed.history[0].status_code == status
    assert sim.accepted == [] and read_log(log) == []
    stats = sim.stats()
    assert stats["faults"]["redirect"] == 3
    assert stats["elsewhere"] == 2                 # the GET and the followed redirect


def test_reset_after_reading_the_request(simulator, session, tmp_path):
    log = tmp_path / "log.jsonl"
    sim = simulator(reset_rate=1.0, log_path=log)
    with raw_send(sim, 1) as s:
        with pytest.raises(ConnectionResetError):
            s.recv(1024)                              # an RST, not an orderly end (b"")
    with pytest.raises(requests.exceptions.ConnectionError) as info:
        send(session, sim, 2)
    assert "reset" in str(info.value).lower()
    assert sim.reset_ids() == [1, 2]
    assert sim.accepted == [] and read_log(log) == []
    stats = sim.stats()
    assert stats["faults"]["reset"] == 2 and stats["reset_ids"] == [1, 2]
    assert stats["requests"] == 2


def test_half_answer_after_accepting(simulator, session, tmp_path):
    log = tmp_path / "log.jsonl"
    sim = simulator(half_rate=1.0, log_path=log)
    with raw_send(sim, 1) as s:
        data = read_until_eof(s)                      # the server closes: EOF within the timeout
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n\r\n" not in data and not data.endswith(b"\r\n")
    # through requests: a 200 without a body, which cannot be read as success
    r = send(session, sim, 2)
    assert r.status_code == 200 and r.content == b""
    with pytest.raises(ValueError):
        r.json()
    assert [e["id"] for e in read_log(log)] == [1, 2]
    assert sim.stats()["faults"]["half"] == 2


def test_huge_body_after_accepting(simulator, session, tmp_path):
    log = tmp_path / "log.jsonl"
    sim = simulator(huge_rate=1.0, huge_bytes=256 * 1024, log_path=log)
    r = send(session, sim, 1)
    assert r.status_code == 200
    assert r.headers["Content-Length"] == str(256 * 1024) == str(len(r.content))
    assert r.json()["code"] == 0
    assert [e["id"] for e in read_log(log)] == [1]
    assert sim.stats()["faults"]["huge"] == 1
    # the default size, read up to the headers only
    big = simulator(huge_rate=1.0)
    assert big.huge_bytes == 4 * 1024 * 1024
    with raw_send(big, 1) as s:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            assert chunk
            head += chunk
    assert b"\r\nContent-Length: 4194304\r\n" in head.split(b"\r\n\r\n")[0] + b"\r\n"
    assert big.accepted_ids() == [1]


def test_retry_after_as_http_date(simulator, session):
    sim = simulator(throttle_rate=1.0, retry_after=30, retry_after_date=True)
    r = send(session, sim, 1)
    assert r.status_code == 429
    when = parsedate_to_datetime(r.headers["Retry-After"])
    server_now = parsedate_to_datetime(r.headers["Date"])
    assert (when - server_now).total_seconds() == 30
    assert abs(when.timestamp() - (time.time() + 30)) < 5
    # every response carries a Date
    ok = simulator()
    for resp in (send(session, ok, 2), session.get(f"{ok.url}/nope", timeout=2)):
        assert abs(parsedate_to_datetime(resp.headers["Date"]).timestamp() - time.time()) < 5


def test_begin_forces_a_fault_for_a_while(simulator, session):
    sim = simulator(seed=3)
    assert send(session, sim, 1).status_code == 200
    sim.begin("redirect", 30)
    assert send(session, sim, 2, allow_redirects=False).status_code == 302
    sim.begin("error", 0.3)                           # the latest begun wins while it lasts
    assert send(session, sim, 3).status_code in (500, 503)
    codes = []
    wait_for(lambda: codes.append(send(session, sim, 3, allow_redirects=False).status_code)
             or codes[-1] not in (500, 503), timeout=10, interval=0.05, message="the end of the error window")
    assert codes[-1] == 302                           # back to the longer window
    sim.begin_outage(30)                              # an outage wins over everything
    assert send(session, sim, 4).status_code == 503
    assert sim.accepted_ids() == [1]
    faults = sim.stats()["faults"]
    assert faults["redirect"] >= 2 and faults["error"] >= 1 and faults["outage"] == 1
    with pytest.raises(ValueError):
        sim.begin("nope", 1)
    with pytest.raises(ValueError):
        sim.begin("reset", -1)


def test_new_faults_are_deterministic_per_seed(simulator, session):
    def run(seed):
        sim = simulator(redirect_rate=0.2, reset_rate=0.2, half_rate=0.2, huge_rate=0.2,
                        huge_bytes=1024, seed=seed)
        out = []
        for i in range(20):
            try:
                r = send(session, sim, i, allow_redirects=False)
                out.append((r.status_code, len(r.content)))
            except requests.exceptions.ConnectionError:
                out.append("reset")
        stats = sim.stats()
        sim.stop()
        return out, stats["faults"], sim.reset_ids(), sim.accepted_ids()
    a, b = run(42), run(42)
    assert a == b
    faults = a[1]
    assert all(faults[k] for k in ("redirect", "reset", "half", "huge"))
    assert sum(faults.values()) < 20                  # some plain successes too


def test_faults_apply_after_auth(simulator):
    sim = simulator(error_rate=1.0, outages=[(0, 60)])
    r = requests.post(f"{sim.url}/send/1", json={"id": 1, "phone": PHONE, "text": "x"}, timeout=2)
    assert r.status_code == 401


# ------------------------------------------------------------------ binding, log, CLI

def test_binds_loopback_only(simulator):
    sim = simulator()
    assert sim.bound_address == ("127.0.0.1", sim.port)
    # all of 127/8 is loopback, but a socket bound to 127.0.0.1 only refuses 127.0.0.2
    with socket.socket() as s:
        s.settimeout(1)
        with pytest.raises(OSError):
            s.connect(("127.0.0.2", sim.port))


def test_read_log_skips_torn_last_line(tmp_path):
    p = tmp_path / "log.jsonl"
    p.write_text('{"id": 1}\n{"id": 2}\n{"id": 3, "pho')
    assert read_log(p) == [{"id": 1}, {"id": 2}]
    p.write_text('{"id": 1}\n{"id": 2}')
    assert read_log(p) == [{"id": 1}, {"id": 2}]
    assert read_log(tmp_path / "missing.jsonl") == []


def test_parser_flags():
    args = build_parser().parse_args([
        "--port", "0", "--token", "t", "--latency", "10-20", "--error-rate", "0.1",
        "--garbage-rate", "0.2", "--throttle-rate", "0.3", "--retry-after", "5",
        "--timeout-rate", "0.05", "--hang", "2", "--outage", "1:2", "--outage", "5:6.5",
        "--reject-phone", "79001112233", "--reject-phone", "+79004445566",
        "--log", "x.jsonl", "--seed", "7"])
    assert args.latency == (10.0, 20.0)
    assert args.outage == [(1.0, 2.0), (5.0, 6.5)]
    assert args.reject_phone == [79001112233, 79004445566]
    assert (args.retry_after, args.hang, args.seed, args.log) == (5, 2.0, 7, "x.jsonl")
    assert build_parser().parse_args([]).port == 8090
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--error-rate", "1.5"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--outage", "5:1"])


def test_parser_new_fault_flags():
    args = build_parser().parse_args([
        "--trickle-rate", "0.1", "--trickle-interval", "0.5", "--redirect-rate", "0.2",
        "--redirect-status", "307", "--reset-rate", "0.3", "--half-rate", "0.05", "--huge-rate", "0.01",
        "--huge-bytes", "1024", "--retry-after-date"])
    assert (args.trickle_rate, args.trickle_interval, args.redirect_rate, args.redirect_status) == (
        0.1, 0.5, 0.2, 307)
    assert (args.reset_rate, args.half_rate, args.huge_rate, args.huge_bytes) == (0.3, 0.05, 0.01, 1024)
    assert args.retry_after_date is True
    d = build_parser().parse_args([])
    assert (d.trickle_interval, d.redirect_status, d.huge_bytes, d.retry_after_date) == (
        3.0, 302, 4 * 1024 * 1024, False)
    for bad in (["--trickle-rate", "2"], ["--trickle-interval", "-1"], ["--redirect-status", "200"],
                ["--reset-rate", "x"], ["--half-rate", "-0.1"], ["--huge-rate", "1.1"], ["--huge-bytes", "10"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)
    for kw in ({"trickle_rate": 2}, {"trickle_interval": -1}, {"redirect_status": 200},
               {"huge_bytes": 3}, {"reset_rate": -1}):
        with pytest.raises(ValueError):
            GatewaySimulator(**kw)


def test_generated_token_printed_in_full():
    sim = GatewaySimulator()
    assert len(sim.token) >= 16
    assert sim.listening_line().endswith(f"token={sim.token}")
    given = GatewaySimulator(token="abcdefghijkl")
    assert given.listening_line().endswith("token=abcdef\u2026")
    assert "abcdefghijkl" not in given.listening_line()


def test_main_subprocess_sigterm(tmp_path):
    log = tmp_path / "log.jsonl"
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", "0", "--token", "t", "--log", str(log)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        # How soon the line comes (a second or less): bench/simulator_timing.py.
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no listening line within 30 s"
        line = proc.stdout.readline().decode("utf-8")
        m = re.fullmatch(r"gateway-sim listening on (http://127\.0\.0\.1:(\d+)/v1) token=t\u2026\n", line)
        assert m, line
        r = requests.post(f"{m.group(1)}/send/9", json={"id": 9, "phone": PHONE, "text": "x"},
                          headers={"Authorization": "Bearer t"}, timeout=2)
        assert r.status_code == 200 and r.json()["code"] == 0
        assert [e["id"] for e in read_log(log)] == [9]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == b""  # exactly one line printed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_the_simulator_stands_outside_the_product(tmp_path):
    """Importing or running the simulator loads none of the product (no huey queue, no database) and
    writes nothing where it runs."""
    code = ("import sys, simulator; "
            "assert not {'huey', 'models', 'tasks', 'peewee'} & set(sys.modules), sorted(sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=30)
    subprocess.run([sys.executable, "-m", "simulator", "--help"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=30)
    assert list(tmp_path.iterdir()) == []
