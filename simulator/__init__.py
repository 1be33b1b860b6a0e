"""Gateway simulator: an HTTP server bound to 127.0.0.1 only that speaks one gateway's protocol
(``protocol``, simulator/protocols.py):

``probe`` (the default) implements the contract in ``/work/shared/probe-api.md``::

    POST {base}/send/{msgId}      Authorization: Bearer <token>
    body {"id": int, "phone": int, "text": str}   (id must equal msgId)
    200 {"code": 0, "message": "OK"} on success

``smsaero`` is SMS Aero's API v2, its credentials the ``email`` and the API key (``token``)::

    POST {base}/sms/send          Authorization: Basic base64(email:api_key)
    body {"number": int, "text": str, "sign": str}
    200 {"success": true, "data": {"id": N, ...}, "message": null} on success

plus ``GET {base}/_sim/stats`` (no auth) for counters.  ``{base}`` is either
empty or the protocol's (``/v1``, ``/v2``), so both ``/send/1`` and
``/v1/send/1`` work; ``url`` is the based form, the same shape as the
production base URL.  The answers below are the probe's; SMS Aero's carry the
same statuses with its own JSON.

Faults are applied only to authenticated, well-formed requests; each is
counted in ``stats()["faults"]`` under its name:

``outage``    503 during the ``outages`` windows (seconds after start); with
              ``retry_after_503`` a 503 (here and from ``error``) carries
              ``Retry-After`` as a 429 does.
``rejected``  400 "number blocked" for the ``reject_phones``, every time.
``timeout``   hang ``hang`` seconds, then close without an answer.
``error``     500 or 503.
``throttle``  429 with ``Retry-After`` in seconds, or as an HTTP date with
              ``retry_after_date`` (every response carries a ``Date`` header,
              so a client can read that date against the server's clock).
``garbage``   200 with a body that does not mean success.
``trickle``   accepted (logged first), then the 200 answer is written one byte
              every ``trickle_interval`` seconds: only a total deadline ends it.
``redirect``  ``redirect_status`` (302) to ``{base}/elsewhere``, which answers
              200 ``{"code": 0}`` to GET and POST; NOT accepted.
``reset``     the request is read, then the connection is reset (RST, no
              answer); NOT accepted, but its msgId is kept in ``reset_ids()``.
``half``      accepted (logged), then only the status line and part of the
              headers are written and the connection is closed.
``huge``      accepted (logged), then 200 with a ``huge_bytes`` JSON body that
              means success if read whole, written in chunks.

``latency`` delays every answer but ``timeout``; an accepted message is logged
when its answer starts, ``received_at`` being its arrival.  ``begin(mode, s)``
forces one fault on every valid request for the next ``s`` seconds;
``end()`` ends them all (outage windows included).

Random faults are deterministic for a given seed: every decision is drawn from
``random.Random(f"{seed}:{key}:{attempt}")`` where ``key`` is the msgId (for
SMS Aero, which gets no id of ours, the phone) and ``attempt`` counts the
valid requests seen so far for that key, so the outcome does not depend on
the interleaving of concurrent requests.

The accepted log (``--log``, JSON lines) has one line per accepted message:
``id`` (the probe's msgId; for SMS Aero the id the simulator gave it),
``phone``, ``text`` (and SMS Aero's ``sign``), ``received_at`` and
``answered_at``.  Duplicates are counted by msgId, and for SMS Aero by
(phone, text): a test judging duplicates gives each mailing its own text.

The random faults share one uniform draw, tested in this order:
timeout, error, throttle, garbage, trickle, redirect, reset, half, huge.  With
rates summing to at most 1 each rate is the exact expected fraction; if they
sum to more than 1 the later ones get only what is left.

Standard library only.  Run ``python -m simulator --help``.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from simulator.protocols import PROTOCOLS, BadRequest as _BadRequest

__all__ = ["GatewaySimulator", "build_parser", "main", "read_log"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8090
MAX_BODY = 64 * 1024          # larger bodies get 413 and the connection is closed
IDLE_TIMEOUT = 300.0          # idle keep-alive connections are dropped after this

_FAULT_NAMES = ("outage", "rejected", "error", "throttle", "garbage", "timeout",
                "trickle", "redirect", "reset", "half", "huge")
_BEGIN_MODES = ("outage", "trickle", "redirect", "reset", "half", "huge", "error", "garbage",
                "timeout", "throttle")
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
DEFAULT_HUGE_BYTES = 4 * 1024 * 1024
DEFAULT_EMAIL = "mailer@example.com"  # the SMS Aero account the smsaero protocol takes
# A cut inside the header block: no blank line ever comes, so no parser can take it whole.
_HALF_HEAD = b"HTTP/1.1 200 OK\r\nServer: gateway-sim\r\nContent-Type: application/json\r\nContent-Len"
_HUGE_MIN = max(p.huge_min() for p in PROTOCOLS.values())
# One shared chunk for every huge body: memory stays flat however many are in flight.
_PAD = memoryview(b"x" * (64 * 1024))
_PHRASES = {s.value: s.phrase for s in HTTPStatus}


# --------------------------------------------------------------------------- helpers

def _jwt_exp(token: str):
    """Return the numeric ``exp`` claim of a JWT-shaped token, else None (no signature check)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        payload = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(payload, dict):
        return None
    exp = payload.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return float(exp)


def _normalize_latency(latency):
    """Accept ms as a number, an ``(lo, hi)`` pair, or a ``"MS"`` / ``"MS-MS"`` string."""
    if isinstance(latency, str):
        return _parse_latency(latency)
    if isinstance(latency, (int, float)) and not isinstance(latency, bool):
        lo = hi = float(latency)
    else:
        lo, hi = (float(x) for x in latency)
    if lo < 0 or hi < lo:
        raise ValueError(f"latency must be 0 <= lo <= hi ms, got {latency!r}")
    return (lo, hi)


def _parse_latency(text: str):
    text = text.strip()
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return _normalize_latency((float(lo), float(hi)))
        return _normalize_latency(float(text))
    except ValueError as exc:
        raise ValueError(f"latency must be MS or MS-MS, got {text!r}") from exc


def _parse_outage(text: str):
    try:
        a, b = text.split(":", 1)
        a, b = float(a), float(b)
    except ValueError as exc:
        raise ValueError(f"outage must be A:B seconds, got {text!r}") from exc
    if a < 0 or b <= a:
        raise ValueError(f"outage must satisfy 0 <= A < B, got {text!r}")
    return (a, b)


def _parse_phone(text: str) -> int:
    t = text.strip().lstrip("+")
    if not t.isdigit():
        raise ValueError(f"phone must be digits, got {text!r}")
    return int(t)


def _rate(name, value) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")
    return value


def _seconds(name, value) -> float:
    value = float(value)
    if not 0.0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return value


def _redirect_status(value) -> int:
    value = int(value)
    if value not in _REDIRECT_STATUSES:
        raise ValueError(f"redirect_status must be one of {', '.join(map(str, _REDIRECT_STATUSES))}, "
                         f"got {value!r}")
    return value


def _huge_bytes(value) -> int:
    value = int(value)
    if value < _HUGE_MIN:
        raise ValueError(f"huge_bytes must be >= {_HUGE_MIN} (the JSON around the padding), got {value!r}")
    return value


_date_cache = (None, "")


def _http_date(now) -> str:
    """IMF-fixdate for the ``Date`` header; every response carries one, so it is formatted
    once per second and reused (a tuple swap is atomic across handler threads)."""
    global _date_cache
    sec = int(now)
    cached = _date_cache
    if cached[0] != sec:
        cached = _date_cache = (sec, formatdate(sec, usegmt=True))
    return cached[1]


def _err(code: int, message: str) -> bytes:
    return json.dumps({"code": code, "message": message}).encode()




# --------------------------------------------------------------------------- server

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address, handler, sim):
        self.sim = sim
        self._conns = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse-DNS getfqdn(); skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, conn, add: bool):
        with self._conns_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def close_connections(self):
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.sim._stop_event.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gateway-sim"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT

    # -- plumbing
    def setup(self):
        super().setup()
        self.server.track(self.connection, True)
        self.server.sim._count("connections")

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format, *args):  # noqa: A002 - silence per-request stderr lines
        pass

    def handle_one_request(self):
        """Lean replacement of the stdlib version: the stdlib parses headers with the email
        package (about a third of the per-request CPU).  Headers become a plain dict with
        lower-case names; anything unusual falls back to the stdlib parser."""
        try:
            line = self.rfile.readline(65537)
            if not line:
                self.close_connection = True
                return
            if len(line) > 65536:
                self.requestline = self.request_version = ""
                self.command = None
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            self.raw_requestline = line
            parts = line.split()
            if (len(parts) != 3 or parts[2] not in (b"HTTP/1.1", b"HTTP/1.0")
                    or not parts[0].isalpha()):
                self._stdlib_request()
                return
            self.command = parts[0].decode("ascii")
            self.path = parts[1].decode("latin-1")
            self.request_version = version = parts[2].decode("ascii")
            self.requestline = line.rstrip(b"\r\n").decode("latin-1")
            headers = {}
            for _ in range(101):
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, sep, value = h.partition(b":")
                if not sep or len(h) > 65536 or not name.strip() or name != name.rstrip():
                    self.close_connection = True
                    self._send(400, _err(400, "bad header"), count=False)
                    return
                key = name.decode("latin-1").lower()
                value = value.strip().decode("latin-1")
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            else:
                self.close_connection = True
                self._send(431, _err(431, "too many headers"), count=False)
                return
            self.headers = headers
            conn = headers.get("connection", "").lower()
            if version == "HTTP/1.0":
                self.close_connection = "keep-alive" not in conn
            else:
                self.close_connection = "close" in conn
            if headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self._other()
            else:
                method()
        except TimeoutError:
            self.close_connection = True

    def send_error(self, code, message=None, explain=None):
        """JSON instead of the stdlib HTML error page (used for malformed requests)."""
        code = int(code)
        self.close_connection = True
        self._send(code, _err(code, message or _PHRASES.get(code, "error")))

    def _stdlib_request(self):
        if not self.parse_request():  # sends its own error
            return
        self.headers = {k.lower(): v for k, v in self.headers.items()}
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self._other()
        else:
            method()

    def _head(self, status, length, ctype="application/json", headers=(), now=None) -> bytes:
        head = (f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}\r\n"
                f"Server: gateway-sim\r\nDate: {_http_date(time.time() if now is None else now)}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {length}\r\n")
        for k, v in headers:
            head += f"{k}: {v}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        return head.encode("latin-1") + b"\r\n"

    def _send(self, status, body=b"", ctype="application/json", headers=(), count=True, now=None):
        try:
            self.wfile.write(self._head(status, len(body), ctype, headers, now) + body)  # one send()
        except OSError:
            self.close_connection = True
        if count:
            self.server.sim._count_status(status)

    def _read_body(self) -> bytes:
        te = self.headers.get("transfer-encoding", "")
        if te:
            if te.strip().lower() != "chunked":
                raise _BadRequest(501, "unsupported transfer-encoding", close=True)
            return self._read_chunked()
        cl = self.headers.get("content-length")
        if cl is None:
            return b""
        if not cl.strip().isdigit():
            raise _BadRequest(400, "invalid Content-Length", close=True)
        n = int(cl)
        if n > MAX_BODY:
            raise _BadRequest(413, "body too large", close=True)
        body = self.rfile.read(n) if n else b""
        if len(body) != n:
            raise _BadRequest(400, "truncated body", close=True)
        return body

    def _read_chunked(self) -> bytes:
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "bad chunk size", close=True) from None
            if size == 0:
                break
            total += size
            if size < 0 or total > MAX_BODY:
                raise _BadRequest(413, "body too large", close=True)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)  # CRLF after the chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    # -- methods
    def do_POST(self):
        arrived = time.time()
        arrived_mono = time.monotonic()
        sim = self.server.sim
        sim._count("requests")
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = self.close_connection or exc.close
            return self._send(exc.status, sim.protocol.error(exc.status, exc.message))
        path = self.path.split("?", 1)[0]
        if path in sim.elsewhere_paths:  # a client that re-POSTs after a 307/308 lands here
            return self._elsewhere(sim)
        which = sim.protocol.send_path(path)
        if which is None:
            return self._send(404, sim.protocol.error(404, "not found"))
        try:
            auth = sim.protocol.check_auth(self.headers, sim)
            if auth is not True:
                return self._send(401, sim.protocol.error(401, auth))
            msg = sim.protocol.validate(which, body, self.headers)
        except _BadRequest as exc:
            return self._send(exc.status, sim.protocol.error(exc.status, exc.message))
        self._answer(sim, msg, arrived, arrived_mono)

    def do_GET(self):
        sim = self.server.sim
        path = self.path.split("?", 1)[0]
        try:
            self._read_body()
        except _BadRequest as exc:
            sim._count("requests")
            self.close_connection = True
            return self._send(exc.status, sim.protocol.error(exc.status, exc.message))
        if path in sim.stats_paths:
            body = json.dumps(sim.stats()).encode()
            return self._send(200, body, count=False)
        if path in sim.elsewhere_paths:
            sim._count("requests")
            return self._elsewhere(sim)
        self._other(read=False)

    def _elsewhere(self, sim):
        """The redirect target: it says success, but nothing sent here is ever accepted."""
        sim._count("elsewhere")
        self._send(200, sim.protocol.ok({"id": 0, "phone": 0, "text": "", "sign": "", "received_at": 0}))

    def _other(self, read=True):
        self.server.sim._count("requests")
        if read:
            try:
                self._read_body()
            except _BadRequest as exc:
                self.close_connection = True
                return self._send(exc.status, self.server.sim.protocol.error(exc.status, exc.message))
        protocol = self.server.sim.protocol
        if protocol.send_path(self.path.split("?", 1)[0]) is not None:
            return self._send(405, protocol.error(405, "method not allowed"), headers=(("Allow", "POST"),))
        self._send(404, protocol.error(404, "not found"))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    # -- send logic
    def _answer(self, sim, msg, arrived, arrived_mono):
        kind, delay, extra = sim._decide(msg["key"], msg["phone"], arrived_mono)
        err = sim.protocol.error
        if kind == "timeout":
            sim._stop_event.wait(sim.hang)
            self.close_connection = True  # close without an answer
            return
        if delay > 0:
            sim._stop_event.wait(delay)
        if kind == "ok":
            self._send(200, sim.protocol.ok(sim._accept(msg, arrived, time.time())))
        elif kind == "outage" or (kind == "error" and extra == 503):
            now = time.time()
            later = (("Retry-After", sim.retry_after_value(now)),) if sim.retry_after_503 else ()
            self._send(503, err(503, "service unavailable"), headers=later, now=now)
        elif kind == "rejected":
            self._send(400, err(400, "number blocked"))
        elif kind == "error":
            self._send(extra, err(extra, "internal error"))
        elif kind == "throttle":
            now = time.time()  # the same instant for Date and a date-form Retry-After
            self._send(429, err(429, "too many requests"), headers=(("Retry-After", sim.retry_after_value(now)),),
                       now=now)
        elif kind == "garbage":
            body, ctype = sim.protocol.garbage[extra]
            self._send(200, body, ctype)
        elif kind == "redirect":
            status = sim.redirect_status
            base = sim.protocol.base if self.path.startswith(sim.protocol.base + "/") else ""
            location = f"http://{HOST}:{sim.port}{base}/elsewhere"
            self._send(status, err(status, _PHRASES[status]), headers=(("Location", location),))
        elif kind == "reset":
            self._reset()  # its msgId was recorded by _decide
        else:  # trickle, half, huge: the gateway takes the message, the answer is what breaks
            entry = sim._accept(msg, arrived, time.time())
            getattr(self, "_" + kind)(sim, entry)

    # -- broken answers
    def _reset(self):
        """Abort with a TCP RST instead of an answer.  SO_LINGER {on, 0 s} turns close() into an
        abort; no shutdown() may come first (it would send a FIN, an orderly end)."""
        self.close_connection = True
        conn = self.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile holds a reference to the socket: close it too so this close() is the real one
        # (the server's later shutdown()/close() then hit a closed socket and are ignored).
        self.rfile.close()
        conn.close()

    def _trickle(self, sim, entry):
        """The whole answer, one byte per write and ``trickle_interval`` apart: each read gets a
        byte before any per-read timeout (Nagle is off, so every byte leaves at once)."""
        body = sim.protocol.ok(entry)
        data = self._head(200, len(body)) + body
        sim._count_status(200)
        try:
            for i in range(len(data)):
                if i and sim._stop_event.wait(sim.trickle_interval):
                    self.close_connection = True  # stopping: drop the rest
                    return
                self.wfile.write(data[i:i + 1])
        except OSError:
            self.close_connection = True

    def _half(self, sim, entry):
        """The status line and part of the headers, then an orderly close.  Not counted in
        ``by_status``: no complete answer was sent."""
        self.close_connection = True
        try:
            self.wfile.write(_HALF_HEAD)
        except OSError:
            pass

    def _huge(self, sim, entry):
        """A 200 whose body is ``huge_bytes`` of valid JSON meaning success, written from the
        one shared padding chunk."""
        prefix, suffix = sim.protocol.huge_prefix(entry), sim.protocol.huge_suffix
        pad = sim.huge_bytes - len(prefix) - len(suffix)
        sim._count_status(200)
        try:
            self.wfile.write(self._head(200, sim.huge_bytes) + prefix)
            while pad > 0:
                if sim._stop_event.is_set():
                    self.close_connection = True
                    return
                n = min(pad, len(_PAD))
                self.wfile.write(_PAD[:n])
                pad -= n
            self.wfile.write(suffix)
        except OSError:
            self.close_connection = True


# --------------------------------------------------------------------------- public API

class GatewaySimulator:
    """In-process gateway simulator.  ``latency`` is in milliseconds, ``hang``,
    ``trickle_interval`` and ``outages`` (list of ``(a, b)``, relative to ``start()``) in
    seconds, ``huge_bytes`` in bytes.  The fault modes are listed in the module docstring.
    ``protocol`` is ``probe`` or ``smsaero``; with ``smsaero`` the credentials are ``email``
    and ``token`` (the API key)."""

    host = HOST

    def __init__(self, port=0, token=None, latency=(0, 0), error_rate=0.0, garbage_rate=0.0,
                 throttle_rate=0.0, retry_after=1, timeout_rate=0.0, hang=30.0, outages=(),
                 reject_phones=(), log_path=None, seed=None, trickle_rate=0.0, trickle_interval=3.0,
                 redirect_rate=0.0, redirect_status=302, reset_rate=0.0, half_rate=0.0, huge_rate=0.0,
                 huge_bytes=DEFAULT_HUGE_BYTES, retry_after_date=False, protocol="probe",
                 email=DEFAULT_EMAIL, retry_after_503=False):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.protocol = PROTOCOLS[protocol]
        self.email = str(email)
        if not self.email or any(c.isspace() or c == ":" for c in self.email):
            raise ValueError("email must be non-empty, without whitespace or a colon")
        base = self.protocol.base
        self.stats_paths = frozenset({"/_sim/stats", f"{base}/_sim/stats"})
        self.elsewhere_paths = frozenset({"/elsewhere", f"{base}/elsewhere"})
        self.port = int(port)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port out of range: {port!r}")
        self.token_generated = token is None
        self.token = secrets.token_urlsafe(24) if token is None else str(token)
        if not self.token or any(c.isspace() for c in self.token):
            raise ValueError("token must be non-empty and contain no whitespace")
        self.latency = _normalize_latency(latency)
        self.error_rate = _rate("error_rate", error_rate)
        self.garbage_rate = _rate("garbage_rate", garbage_rate)
        self.throttle_rate = _rate("throttle_rate", throttle_rate)
        self.timeout_rate = _rate("timeout_rate", timeout_rate)
        self.trickle_rate = _rate("trickle_rate", trickle_rate)
        self.trickle_interval = _seconds("trickle_interval", trickle_interval)
        self.redirect_rate = _rate("redirect_rate", redirect_rate)
        self.redirect_status = _redirect_status(redirect_status)
        self.reset_rate = _rate("reset_rate", reset_rate)
        self.half_rate = _rate("half_rate", half_rate)
        self.huge_rate = _rate("huge_rate", huge_rate)
        self.huge_bytes = _huge_bytes(huge_bytes)
        self.retry_after_date = bool(retry_after_date)
        self.retry_after_503 = bool(retry_after_503)
        self.retry_after = int(retry_after)
        if self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        self.hang = float(hang)
        if self.hang < 0:
            raise ValueError("hang must be >= 0")
        self.outages = tuple(_parse_outage(o) if isinstance(o, str) else _parse_outage(f"{o[0]}:{o[1]}")
                             for o in outages)
        self.reject_phones = frozenset(_parse_phone(str(p)) for p in reject_phones)
        self.log_path = None if log_path is None else str(log_path)
        self.seed = random.SystemRandom().randrange(2 ** 63) if seed is None else seed

        self._token_bytes = self.token.encode("utf-8")
        self._token_exp = _jwt_exp(self.token)
        self._has_random = any((self.error_rate, self.garbage_rate, self.throttle_rate,
                                self.timeout_rate, self.trickle_rate, self.redirect_rate,
                                self.reset_rate, self.half_rate, self.huge_rate, self.latency[1]))
        self._forced = ()   # (a, b, mode) windows from begin(), relative to start()
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._server = None
        self._thread = None
        self._log_file = None
        self._started_mono = None
        self.started_at = None
        self._stopped = False
        # state (under _lock)
        self._accepted = []
        self._accept_counts = {}
        self._attempts = {}
        self._next_id = 1000  # SMS Aero's message ids, one per accepted message
        self._counters = {"requests": 0, "connections": 0, "elsewhere": 0}
        self._reset_ids = []
        self._by_status = {}
        self._faults = dict.fromkeys(_FAULT_NAMES, 0)

    # -- lifecycle
    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{self.protocol.base}"

    @property
    def bound_address(self):
        """``(host, port)`` of the listening socket (None before start)."""
        return None if self._server is None else self._server.socket.getsockname()[:2]

    def start(self) -> "GatewaySimulator":
        if self._server is not None:
            raise RuntimeError("simulator already started")
        server = _Server((HOST, self.port), _Handler, self)
        try:
            if self.log_path is not None:
                self._log_file = open(self.log_path, "a", encoding="utf-8")
        except OSError:
            server.server_close()
            raise
        self._server = server
        self.port = server.server_address[1]
        self._started_mono = time.monotonic()
        self.started_at = time.time()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"gateway-sim-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None or self._stopped:
            return
        self._stopped = True
        self._stop_event.set()  # wakes handlers sleeping on latency / hang
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def retry_after_value(self, now):
        """A Retry-After header's value answered at `now`: seconds, or the HTTP date they end at."""
        return (formatdate(now + self.retry_after, usegmt=True) if self.retry_after_date
                else str(self.retry_after))

    def begin(self, mode, seconds):
        """For `seconds` from now, give every valid request the fault `mode`, whatever the rates
        (tests switch a fault on at a chosen moment).  An outage window wins over the others;
        among the others the latest begun wins."""
        if mode not in _BEGIN_MODES:
            raise ValueError(f"mode must be one of {', '.join(_BEGIN_MODES)}, got {mode!r}")
        seconds = _seconds("seconds", seconds)
        if self._started_mono is None:
            raise RuntimeError("simulator not started")
        elapsed = time.monotonic() - self._started_mono
        # Rebinding a tuple is atomic: handler threads read either the old or the new one.
        if mode == "outage":
            self.outages = self.outages + ((elapsed, elapsed + seconds),)
        else:
            self._forced = self._forced + ((elapsed, elapsed + seconds, mode),)

    def end(self):
        """End now every fault begun with begin() and every outage window."""
        self._forced, self.outages = (), ()

    def begin_outage(self, seconds):
        """From now on, answer 503 for `seconds` (tests start an outage at a chosen moment)."""
        self.begin("outage", seconds)

    def __enter__(self):
        return self.start() if self._server is None else self

    def __exit__(self, *exc):
        self.stop()

    def listening_line(self) -> str:
        shown = self.token if self.token_generated else self.token[:6] + "\u2026"
        return self.protocol.listening(self, shown)

    def __repr__(self):
        return f"<GatewaySimulator {self.url} token={self.token[:6]}\u2026>"

    # -- in-process inspection
    @property
    def accepted(self) -> list:
        """Copy of the accepted messages, in acceptance order."""
        with self._lock:
            return [dict(e) for e in self._accepted]

    def accepted_ids(self) -> list:
        with self._lock:
            return [e["id"] for e in self._accepted]

    def reset_ids(self) -> list:
        """msgIds of requests that reached the gateway, were not accepted and got a reset."""
        with self._lock:
            return list(self._reset_ids)

    def stats(self) -> dict:
        with self._lock:
            accepted = len(self._accepted)
            unique = len(self._accept_counts)
            return {
                "requests": self._counters["requests"],
                "connections": self._counters["connections"],
                "elsewhere": self._counters["elsewhere"],   # requests to the redirect target
                "accepted": accepted,
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "faults": dict(self._faults),
                "reset_ids": list(self._reset_ids),
                "unique_accepted_ids": unique,
                "duplicate_accepted_ids": accepted - unique,   # acceptances repeating an accepted id
                "ids_accepted_more_than_once": sum(1 for c in self._accept_counts.values() if c > 1),
                "uptime": 0.0 if self._started_mono is None else time.monotonic() - self._started_mono,
                "seed": self.seed,
            }

    # -- used by the handler
    def _count(self, key):
        with self._lock:
            self._counters[key] += 1

    def _count_status(self, status):
        with self._lock:
            self._by_status[status] = self._by_status.get(status, 0) + 1

    def _decide(self, msg_id, phone, arrived_mono):
        """Return ``(kind, delay_seconds, extra)`` for a valid authenticated request."""
        with self._lock:
            attempt = self._attempts.get(msg_id, 0)
            self._attempts[msg_id] = attempt + 1
        rng = random.Random(f"{self.seed}:{msg_id}:{attempt}") if self._has_random else None
        lo, hi = self.latency
        delay = (lo if hi == lo else rng.uniform(lo, hi)) / 1000.0
        elapsed = arrived_mono - self._started_mono
        kind, extra = "ok", None
        forced = next((mode for a, b, mode in reversed(self._forced) if a <= elapsed < b), None)
        if any(a <= elapsed < b for a, b in self.outages):
            kind = "outage"
        elif forced is not None:
            kind = forced
        elif phone in self.reject_phones:
            kind = "rejected"
        elif rng is not None:
            u = rng.random()
            edge = 0.0
            # New modes go at the end so a seed keeps giving the same faults as before.
            for name, rate in (("timeout", self.timeout_rate), ("error", self.error_rate),
                               ("throttle", self.throttle_rate), ("garbage", self.garbage_rate),
                               ("trickle", self.trickle_rate), ("redirect", self.redirect_rate),
                               ("reset", self.reset_rate), ("half", self.half_rate),
                               ("huge", self.huge_rate)):
                edge += rate
                if rate and u < edge:
                    kind = name
                    break
        if kind == "error":
            # a forced error may come without a random draw: seed one the same way
            rng = rng or random.Random(f"{self.seed}:{msg_id}:{attempt}")
            extra = rng.choice((500, 503))
        elif kind == "garbage":
            extra = (msg_id + attempt) % len(self.protocol.garbage)   # rotates across retries
        if kind != "ok":
            with self._lock:
                self._faults[kind] += 1
                if kind == "reset":
                    self._reset_ids.append(msg_id)
        return kind, delay, extra

    def _accept(self, msg, received_at, answered_at):
        """Log and count an accepted message; -> its log entry (what its answer says of it)."""
        with self._lock:
            gateway_id, self._next_id = self._next_id, self._next_id + 1
        entry = self.protocol.entry(msg, received_at, answered_at, gateway_id)
        if self._log_file is not None:
            line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
            with self._log_lock:
                if self._log_file is not None:
                    self._log_file.write(line)
                    self._log_file.flush()
        key = self.protocol.duplicate_key(msg)
        with self._lock:
            self._accepted.append(entry)
            self._accept_counts[key] = self._accept_counts.get(key, 0) + 1
        return entry


def read_log(path) -> list:
    """Parse a JSON-lines acceptance log.  A torn (unterminated, unparsable) last line is
    skipped; a missing file reads as empty; a bad complete line raises ValueError."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    out = []
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            out.append(json.loads(raw))
        except ValueError as exc:
            raise ValueError(f"{path}: line {n} is not valid JSON: {exc}") from None
    if tail.strip():
        try:
            entry = json.loads(tail)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            out.append(entry)
    return out


# --------------------------------------------------------------------------- CLI

def _arg(fn):
    def parse(text):
        try:
            return fn(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = fn.__name__.lstrip("_")
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Gateway simulator speaking the probe's or SMS Aero's protocol (binds 127.0.0.1 only).")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="probe",
                   help="the gateway to be: probe (the default; POST /v1/send/{msgId}, bearer token) or "
                        "smsaero (SMS Aero's API v2: POST /v2/sms/send, Basic auth with --email and --api-key)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default 8090; 0 = pick a free one)")
    p.add_argument("--token", "--api-key", dest="token", default=None,
                   help="the probe's bearer token, or SMS Aero's API key, to require "
                        "(default: generate and print one)")
    p.add_argument("--email", default=DEFAULT_EMAIL,
                   help=f"smsaero: the account's e-mail to require (default {DEFAULT_EMAIL})")
    p.add_argument("--latency", type=_arg(_parse_latency), default=(0.0, 0.0), metavar="MS[-MS]",
                   help="delay before answering, fixed or uniform range, in milliseconds")
    p.add_argument("--error-rate", type=_arg(lambda s: _rate("--error-rate", s)), default=0.0, metavar="F",
                   help="fraction answered 500/503")
    p.add_argument("--garbage-rate", type=_arg(lambda s: _rate("--garbage-rate", s)), default=0.0, metavar="F",
                   help="fraction answered 200 with a garbage body")
    p.add_argument("--throttle-rate", type=_arg(lambda s: _rate("--throttle-rate", s)), default=0.0,
                   metavar="F", help="fraction answered 429 with Retry-After")
    p.add_argument("--retry-after", type=int, default=1, metavar="N", help="Retry-After seconds for 429 (default 1)")
    p.add_argument("--timeout-rate", type=_arg(lambda s: _rate("--timeout-rate", s)), default=0.0,
                   metavar="F", help="fraction that hang, then close the connection without an answer")
    p.add_argument("--hang", type=float, default=30.0, metavar="S", help="hang duration in seconds (default 30)")
    p.add_argument("--outage", type=_arg(_parse_outage), action="append", default=[], metavar="A:B",
                   help="answer 503 to everything between A and B seconds after start (repeatable)")
    p.add_argument("--reject-phone", type=_arg(_parse_phone), action="append", default=[], metavar="PHONE",
                   help="answer 400 'number blocked' for this phone (repeatable)")
    p.add_argument("--retry-after-date", action="store_true",
                   help="send Retry-After for 429 as an HTTP date instead of seconds")
    p.add_argument("--retry-after-503", action="store_true",
                   help="send Retry-After with every 503 (outages and errors) too, as for 429")
    p.add_argument("--trickle-rate", type=_arg(lambda s: _rate("--trickle-rate", s)), default=0.0,
                   metavar="F", help="fraction accepted, then answered one byte at a time")
    p.add_argument("--trickle-interval", type=_arg(lambda s: _seconds("--trickle-interval", s)), default=3.0,
                   metavar="S", help="seconds between the bytes of a trickled answer (default 3)")
    p.add_argument("--redirect-rate", type=_arg(lambda s: _rate("--redirect-rate", s)), default=0.0,
                   metavar="F", help="fraction redirected to {base}/elsewhere (not accepted)")
    p.add_argument("--redirect-status", type=_arg(_redirect_status), default=302, metavar="CODE",
                   help="status of the redirect: 301, 302, 303, 307 or 308 (default 302)")
    p.add_argument("--reset-rate", type=_arg(lambda s: _rate("--reset-rate", s)), default=0.0,
                   metavar="F", help="fraction read, then reset (RST) without an answer (not accepted)")
    p.add_argument("--half-rate", type=_arg(lambda s: _rate("--half-rate", s)), default=0.0,
                   metavar="F", help="fraction accepted, then answered with half a header and closed")
    p.add_argument("--huge-rate", type=_arg(lambda s: _rate("--huge-rate", s)), default=0.0,
                   metavar="F", help="fraction accepted, then answered 200 with a huge body")
    p.add_argument("--huge-bytes", type=_arg(_huge_bytes), default=DEFAULT_HUGE_BYTES, metavar="N",
                   help=f"size of a huge body in bytes (default {DEFAULT_HUGE_BYTES})")
    p.add_argument("--log", default=None, metavar="FILE", help="append accepted messages as JSON lines")
    p.add_argument("--seed", type=int, default=None, help="seed for the fault decisions")
    return p


def _print_line(line: str):
    try:
        print(line, flush=True)
    except UnicodeEncodeError:
        print(line.replace("\u2026", "..."), flush=True)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sim = GatewaySimulator(
            port=args.port, token=args.token, latency=args.latency, error_rate=args.error_rate,
            garbage_rate=args.garbage_rate, throttle_rate=args.throttle_rate,
            retry_after=args.retry_after, timeout_rate=args.timeout_rate, hang=args.hang,
            outages=args.outage, reject_phones=args.reject_phone, log_path=args.log, seed=args.seed,
            trickle_rate=args.trickle_rate, trickle_interval=args.trickle_interval,
            redirect_rate=args.redirect_rate, redirect_status=args.redirect_status,
            reset_rate=args.reset_rate, half_rate=args.half_rate, huge_rate=args.huge_rate,
            huge_bytes=args.huge_bytes, retry_after_date=args.retry_after_date, protocol=args.protocol,
            email=args.email, retry_after_503=args.retry_after_503)
    except ValueError as exc:
        parser.error(str(exc))

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        try:
            sim.start()
        except OSError as exc:
            print(f"gateway-sim: cannot listen on {HOST}:{args.port}: {exc}", file=sys.stderr)
            return 1
        _print_line(sim.listening_line())
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

