"""What the HTTP backends share: one urllib3 connection pool per process, one POST per attempt, and
the parts of an answer that mean the same whatever the gateway; each backend reads its own 200s and
refusals (probe.py, smsaero.py).

What the gateway received is what matters, so every way an attempt can end is sorted by it:
- `retry`: the gateway certainly did not take the message: a refused or timed-out connect, 5xx, 408,
  429 (after its Retry-After); `halt` marks answers about the gateway as a whole (a redirect, and
  each backend's refused credentials), which pause sending for everyone.
- `doubt`: the request may have reached the gateway but no valid answer came back: a read timeout or
  the deadline, a reset or close after the request was written, only an interim 1xx, a 200 cut off,
  over the size cap or unreadable; MAILER_IN_DOUBT decides what happens next.
- `sent` and `failed`: what the backend makes of a 200 read whole and of the other 4xx.

urllib3 is used directly (requests is built on it) because the send path needs what requests hides:
redirects never followed, a body read only up to a cap, and a total deadline on the answer.
"""
import datetime as dt
import email.utils
import logging
import socket
import ssl
import threading
import time
import urllib.request

import urllib3
from urllib3.exceptions import (ConnectTimeoutError, HTTPError, NewConnectionError, ProxyError,
                                SSLError)

from domain.vocabulary import DOUBT, FAILED, RETRY
from engine.gateways.base import ERROR_CAP, Gateway, Verdict, scrub

# A malformed header block is a verdict of ours (in doubt), not a traceback in urllib3's log.
logging.getLogger("urllib3.connection").setLevel(logging.ERROR)

RETRYABLE_STATUS = {408, 429}
BODY_CAP = 8192  # bytes of an answer read at most: the gateways' answers are hundreds of bytes
MAX_RETRY_AFTER = 3600.0


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


def is_loopback(url):
    return url.startswith(("http://127.", "http://localhost", "https://127.", "https://localhost"))


def _pool_manager(url, pool_size):
    """Pools for the gateway, through the environment's proxy when one applies (looked up once)."""
    options = dict(num_pools=2, maxsize=pool_size, block=False, retries=False)
    if url.startswith("https://"):
        options["ssl_context"] = _tls_context()
    proxy = None
    if not is_loopback(url):
        scheme = url.split("://", 1)[0]
        host = urllib3.util.parse_url(url).host or ""
        proxy = urllib.request.getproxies().get(scheme)
        if proxy and urllib.request.proxy_bypass(host):
            proxy = None
    manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
    return manager


class HttpGateway(Gateway):
    """A backend that POSTs each message to `url` (a base URL): the transport, the deadline, and the
    statuses every HTTP gateway means alike. A subclass builds the request (`_request`) and reads a
    whole 200 (`_answer_200`) and a 4xx (`_refusal`)."""
    url_variable = ""  # the variable an operator checks after a redirect

    def __init__(self, url, connect_timeout=3.05, read_timeout=10.0, pool_size=64):
        super().__init__()
        self.url = url.rstrip("/")
        self.local = is_loopback(self.url)
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        # The whole answer must come within this many seconds of the request's start.
        self.deadline = max(connect_timeout, read_timeout)
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pools = _pool_manager(self.url, pool_size)

    def _secrets(self):
        """What every error is scrubbed of before it is kept, logged or shown."""
        return ()

    def _request(self, msg_id, phone, text):
        """-> (url, body bytes, headers) of one attempt."""
        raise NotImplementedError

    def _answer_200(self, text, started):
        """The verdict on a 200 read whole (its body decoded)."""
        raise NotImplementedError

    def _refusal(self, status, error, started):
        """The verdict on a 4xx other than 408 and 429: refused for good, unless it is about us."""
        if status == 401:
            # Expired credentials are the operator's to fix, not the message's fault: keep it pending.
            return self._verdict(RETRY, status, started, error, halt=True)
        return self._verdict(FAILED, status, started, error)

    def _send(self, msg_id, phone, text, send_by):
        started = time.monotonic()
        url, body, headers = self._request(msg_id, phone, text)
        _deadline.at = started + self.deadline
        _deadline.send_by, _deadline.late_reads = send_by, 0
        response = None
        try:
            try:
                response = self.pools.urlopen(
                    "POST", url, body=body, headers=headers,
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
            return self._answer_200(text, started)
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
                                 f"URL may have moved (check {self.url_variable})", halt=True)
        if status >= 500 or status in RETRYABLE_STATUS:
            return self._verdict(RETRY, status, started, error,
                                 retry_after_seconds(response.headers.get("Retry-After"),
                                                     response.headers.get("Date")))
        return self._refusal(status, error, started)

    def _verdict(self, outcome, status, started, error="", retry_after=None, halt=False, ref=""):
        for secret in self._secrets():
            error = scrub(error, secret)
        if len(error) > ERROR_CAP:
            error = error[:ERROR_CAP] + "…"
        return Verdict(outcome, status, round((time.monotonic() - started) * 1000, 2), error,
                       retry_after, time.time(), halt, ref)

    def where(self):
        """The gateway as the operator knows it: its host (and path) for a real one, the whole URL
        for the local simulator."""
        if self.local:
            return f"local simulator {self.url}"
        parsed = urllib3.util.parse_url(self.url)
        return f"{parsed.host}{parsed.path or ''}" if parsed.host else self.url



def _describe(exc):
    """An exception as one line, with its cause (urllib3 wraps the socket error)."""
    inner = exc
    while getattr(inner, "reason", None) is not None and isinstance(inner.reason, BaseException):
        inner = inner.reason
    name = type(exc).__name__ if inner is exc else f"{type(exc).__name__}: {type(inner).__name__}"
    return f"{name}: {inner}"
