"""The probe gateway client: one urllib3 connection pool per process, one POST per attempt, and a
verdict on each answer that the dispatcher turns into a message's next state.

What the gateway received is what matters, so every way an attempt can end is sorted by it:
- `sent`: HTTP 200 with `{"code": 0}`, read whole within the deadline.
- `retry`: the gateway certainly did not take the message (refused or timed-out connect, 5xx, 408,
  429, a 200 that says no); `halt` marks answers about the gateway as a whole (401, a redirect),
  which pause sending for everyone.
- `failed`: refused for good (another 4xx).
- `doubt`: the request may have reached the gateway but no valid answer came back (read timeout or
  deadline, reset or closed after the request was written, an unreadable 200); MAILER_IN_DOUBT
  decides what happens next.

urllib3 is used directly (requests is built on it) because the send path needs what requests hides:
redirects never followed, a body read only up to a cap, and a total deadline on the answer.
"""
import datetime as dt
import email.utils
import json
import logging
import socket
import ssl
import threading
import time
import urllib.request
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import (ConnectTimeoutError, HTTPError, NewConnectionError, ProxyError,
                                SSLError)

from domain.settings import DEFAULT_GATEWAY_URL
from domain.stats import GatewayHealth, gateway_answered
from domain.validation import ValidationError
from domain.vocabulary import DOUBT, FAILED, RETRY, SENT

# A malformed header block is a verdict of ours (in doubt), not a traceback in urllib3's log.
logging.getLogger("urllib3.connection").setLevel(logging.ERROR)

DEFAULT_URL = DEFAULT_GATEWAY_URL
RETRYABLE_STATUS = {408, 429}
BODY_CAP = 8192  # bytes of an answer read at most: the probe's answers are tens of bytes
MAX_RETRY_AFTER = 3600.0
ERROR_CAP = 500  # characters of an error kept (after the token is scrubbed from it)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # sent, retry, failed or doubt
    http_status: int | None = None
    latency_ms: float | None = None
    error: str = ""
    retry_after: float | None = None
    at: float = 0.0  # epoch seconds the answer (or the error) came
    halt: bool = False  # the gateway refuses us as a whole: pause sending for everyone


def mask(token):
    """What may be shown of a secret: its first characters."""
    if not token:
        return "(none)"
    return token[:6] + "…"


SCRUB_PIECE = 7  # any run of this many characters of the token is taken for a piece of it
# What stands where the token was: not the token's first characters, which could join the text around
# them into a new piece of it.
TOKEN_MARK = "[token]"


def scrub(text, token):
    """`text` with the token, and every piece of it of SCRUB_PIECE characters or more, masked. A
    gateway that echoes a request, or an error cut in the middle of the token, must not leak it."""
    if not token or not text or len(token) < SCRUB_PIECE:
        return text.replace(token, TOKEN_MARK) if token and text else text
    covered = bytearray(len(text))
    for i in range(len(token) - SCRUB_PIECE + 1):
        piece = token[i:i + SCRUB_PIECE]
        at = text.find(piece)
        while at != -1:
            covered[at:at + SCRUB_PIECE] = b"\x01" * SCRUB_PIECE
            at = text.find(piece, at + 1)
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append(TOKEN_MARK)
        else:
            out.append(text[i])
            i += 1
    scrubbed = "".join(out)
    if any(token[j:j + SCRUB_PIECE] in scrubbed for j in range(len(token) - SCRUB_PIECE + 1)):
        return "(an error that quoted the gateway token; withheld)"
    return scrubbed


def check_token(token):
    """A token that cannot go into a header is an operator's mistake to show at start-up, not a
    header error (which would print part of it) at the first send."""
    if not token:
        return token
    if token != token.strip():
        raise ValidationError({"PROBE_TOKEN": "has white space around it (a line end from a "
                                                     "CRLF env file?); remove it"})
    bad = next((i for i, c in enumerate(token) if not "\x21" <= c <= "\x7e"), None)
    if bad is not None:
        raise ValidationError({"PROBE_TOKEN": f"has a character that cannot be sent in a "
                                                     f"header at position {bad + 1}"})
    return token


def retry_after_seconds(value, date_header=None, now=None):
    """Retry-After as seconds or as an HTTP date (relative to the answer's own Date when it has one,
    so the two machines' clocks need not agree); None when absent or unreadable."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
        base = email.utils.parsedate_to_datetime(date_header) if date_header else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    if base is None or base.tzinfo is None:
        base = dt.datetime.fromtimestamp(now or time.time(), dt.timezone.utc)
    return max(0.0, min((when - base).total_seconds(), MAX_RETRY_AFTER))


# ---------------------------------------------------------------------------------------------------
# A total deadline on the answer. A socket timeout bounds each read, so a gateway trickling a byte
# every few seconds would hold a sender for ever; these sockets cut every read to what is left of the
# request's deadline, kept per sending thread.

_deadline = threading.local()
LATE_READS = 64  # reads allowed past the deadline, each taking only what has already arrived


class TooLate(Exception):
    """The request was about to be written after the instant it had to leave by: nothing was sent.
    Not an OSError, so urllib3 lets it through unwrapped (and drops the connection)."""


def _time_left(sock):
    at = getattr(_deadline, "at", None)
    if at is not None:
        left = at - time.monotonic()
        if left <= 0:
            # Past the deadline a read still takes what has already arrived (a sender that was
            # itself frozen finds its answer waiting), but waits for nothing more, a few times.
            _deadline.late_reads = getattr(_deadline, "late_reads", 0) + 1
            if _deadline.late_reads > LATE_READS:
                raise TimeoutError("no whole answer within the deadline")
            left = 0.001
        timeout = sock.gettimeout()
        sock.settimeout(left if timeout is None else min(left, timeout))


def _before_write():
    """The last look before a request's first byte is written (after any connect and TLS
    handshake): a request that may no longer leave does not."""
    send_by = getattr(_deadline, "send_by", None)
    if send_by is not None:
        _deadline.send_by = None  # the rest of this request is written whatever happens
        if time.monotonic() > send_by:
            raise TooLate()


class _DeadlineSocket(socket.socket):
    __slots__ = ()  # the same layout as socket.socket, so a connected socket can take this class

    def sendall(self, data, flags=0):
        _before_write()
        return super().sendall(data, flags)

    def recv_into(self, buffer, nbytes=0, flags=0):
        _time_left(self)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, bufsize, flags=0):
        _time_left(self)
        return super().recv(bufsize, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    def sendall(self, data, flags=0):
        _before_write()
        return super().sendall(data, flags)
    def recv_into(self, buffer, nbytes=None, flags=0):
        _time_left(self)
        return super().recv_into(buffer, nbytes, flags)

    def recv(self, buflen=1024, flags=0):
        _time_left(self)
        return super().recv(buflen, flags)


class _Connection(urllib3.connection.HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        sock.__class__ = _DeadlineSocket
        return sock


class _TLSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        sock.__class__ = _DeadlineSocket
        return sock


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


def _tls_context():
    context = urllib3.util.ssl_.create_urllib3_context()
    context.load_default_certs()
    context.sslsocket_class = _DeadlineSSLSocket
    return context


def _is_loopback(url):
    return url.startswith(("http://127.", "http://localhost", "https://127.", "https://localhost"))


def _pool_manager(url, pool_size):
    """Pools for the gateway, through the environment's proxy when one applies (looked up once)."""
    options = dict(num_pools=2, maxsize=pool_size, block=False, retries=False)
    if url.startswith("https://"):
        options["ssl_context"] = _tls_context()
    proxy = None
    if not _is_loopback(url):
        scheme = url.split("://", 1)[0]
        host = urllib3.util.parse_url(url).host or ""
        proxy = urllib.request.getproxies().get(scheme)
        if proxy and urllib.request.proxy_bypass(host):
            proxy = None
    manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
    return manager


class Health:
    """The gateway's health as this process's attempts find it (domain.stats.GatewayHealth): folded
    from every verdict by the sending threads, read by the heartbeat, which writes it with each beat.
    Nothing more goes to the database per message, and nothing is sent to find out.

    Kept on the verdicts' own epoch seconds; an answer while all is well only moves the last answer
    forward (about a microsecond: the send path is CPU-bound), folded in when next needed."""

    def __init__(self):
        self._lock = threading.Lock()
        self._health = GatewayHealth()
        self._ok_at = None  # the last answer not yet folded in (only while not failing)

    def note(self, verdict):
        at = verdict.at or time.time()
        answered = gateway_answered(verdict.outcome, verdict.http_status)
        with self._lock:
            if answered and not self._health.failing:
                if self._ok_at is None or at > self._ok_at:
                    self._ok_at = at
                return
            self._health = self._folded().noted(answered, at, "" if answered else verdict.error)

    def _folded(self):
        if self._ok_at is not None:
            self._health, self._ok_at = self._health.noted(True, self._ok_at), None
        return self._health

    def current(self):
        """The health now, its times as naive UTC datetimes."""
        with self._lock:
            health = self._folded()
        return GatewayHealth(*(_utc(t) for t in (health.ok_at, health.failing_since, health.failed_at)),
                             health.cause)


def _utc(epoch):
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.timezone.utc).replace(tzinfo=None)


class Gateway:
    """POST {url}/send/{msgId} with a bearer token; classify whatever comes back. `health` is what
    the answers say of the gateway as a whole."""

    def __init__(self, url, token, connect_timeout=3.05, read_timeout=10.0, pool_size=64):
        self.url = url.rstrip("/")
        self._token = check_token(token or "")
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        # The whole answer must come within this many seconds of the request's start.
        self.deadline = max(connect_timeout, read_timeout)
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pools = _pool_manager(self.url, pool_size)
        self.headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": "mailer"}
        self.health = Health()

    @property
    def masked_token(self):
        return mask(self._token)

    def describe(self):
        kind = "local simulator" if _is_loopback(self.url) else "gateway"
        return f"{kind} {self.url} token {mask(self._token)}"

    def send(self, msg_id, phone, text, send_by=None):
        """POST one message; None if it could not leave before `send_by` (monotonic): then nothing
        was written."""
        verdict = self._post(msg_id, phone, text, send_by)
        if verdict is not None:
            self.health.note(verdict)
        return verdict

    def _post(self, msg_id, phone, text, send_by):
        started = time.monotonic()
        body = json.dumps({"id": int(msg_id), "phone": int(phone), "text": text},
                          ensure_ascii=False).encode("utf-8")
        _deadline.at = started + self.deadline
        _deadline.send_by, _deadline.late_reads = send_by, 0
        response = None
        try:
            try:
                response = self.pools.urlopen(
                    "POST", f"{self.url}/send/{msg_id}", body=body, headers=self.headers,
                    redirect=False, retries=False, timeout=self.timeout, preload_content=False,
                    assert_same_host=False)
            except (NewConnectionError, ConnectTimeoutError, SSLError, ProxyError) as exc:
                # The connection was never made: the gateway cannot have the request.
                return self._verdict(RETRY, None, started, f"not sent: {_describe(exc)}")
            except HTTPError as exc:
                return self._verdict(DOUBT, None, started, f"in doubt: {_describe(exc)}")
            except TooLate:
                return None
            return self._classify(response, started)
        finally:
            _deadline.at = _deadline.send_by = None
            if response is not None:
                response.release_conn()

    def _classify(self, response, started):
        status = response.status
        try:
            data = response.read(BODY_CAP + 1, decode_content=True)
            whole = len(data) <= BODY_CAP
        except (HTTPError, OSError) as exc:
            data, whole = b"", False
            cut = _describe(exc)
        else:
            cut = f"the answer is over {BODY_CAP} bytes"
        if not whole:
            response.close()  # not worth draining: a fresh connection is cheaper
        text = data[:BODY_CAP].decode("utf-8", "replace")
        if status == 200:
            if not whole:
                return self._verdict(DOUBT, status, started, f"in doubt: HTTP 200 but {cut}: {text}")
            try:
                answer = json.loads(text)
            except ValueError:
                return self._verdict(DOUBT, status, started, f"in doubt: unreadable HTTP 200 answer: {text}")
            if isinstance(answer, dict) and answer.get("code") == 0 and not isinstance(answer.get("code"), bool):
                return self._verdict(SENT, status, started)
            # A readable answer that is not a success: the gateway says it did not take it.
            return self._verdict(RETRY, status, started, f"HTTP 200 with an unexpected answer: {text}")
        error = f"HTTP {status}: {text}"
        if status < 200:
            # An interim answer (103 Early Hints, say) where the final one should be: what the gateway
            # made of the request is unknown, and the connection still holds the rest of the answer,
            # which must never be read as the answer to the next request.
            response.close()
            return self._verdict(DOUBT, status, started, f"in doubt: only an interim answer came ({error})")
        if 300 <= status < 400:
            where = response.headers.get("Location", "")
            return self._verdict(RETRY, status, started,
                                 f"HTTP {status} redirect to {where!r}, not followed: the gateway "
                                 f"URL may have moved (check PROBE_URL)", halt=True)
        if status >= 500 or status in RETRYABLE_STATUS:
            return self._verdict(RETRY, status, started, error,
                                 retry_after_seconds(response.headers.get("Retry-After"),
                                                     response.headers.get("Date")))
        if status == 401:
            # An expired token is the operator's to fix, not the message's fault: keep it pending.
            return self._verdict(RETRY, status, started, error, halt=True)
        return self._verdict(FAILED, status, started, error)

    def _verdict(self, outcome, status, started, error="", retry_after=None, halt=False):
        error = scrub(error, self._token)
        if len(error) > ERROR_CAP:
            error = error[:ERROR_CAP] + "…"
        return Verdict(outcome, status, round((time.monotonic() - started) * 1000, 2), error,
                       retry_after, time.time(), halt)


def _describe(exc):
    """An exception as one line, with its cause (urllib3 wraps the socket error)."""
    inner = exc
    while getattr(inner, "reason", None) is not None and isinstance(inner.reason, BaseException):
        inner = inner.reason
    name = type(exc).__name__ if inner is exc else f"{type(exc).__name__}: {type(inner).__name__}"
    return f"{name}: {inner}"


def gateway_from_settings(settings, pool_size=64):
    return Gateway(settings.gateway_url, settings.token, connect_timeout=settings.connect_timeout,
                   read_timeout=settings.read_timeout, pool_size=pool_size)
