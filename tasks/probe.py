"""The probe gateway client: one pooled requests.Session per process, one POST per attempt, and a
verdict on each answer (sent, retry, failed) that the dispatcher turns into a message's next state."""
import os
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

DEFAULT_URL = "https://probe.fbrq.cloud/v1"
SENT, RETRY, FAILED = "sent", "retry", "failed"
RETRYABLE_STATUS = {408, 429}


@dataclass(frozen=True)
class Verdict:
    outcome: str  # sent, retry or failed (permanent)
    http_status: int | None = None
    latency_ms: float | None = None
    error: str = ""
    retry_after: float | None = None
    at: float = 0.0  # epoch seconds the answer (or the error) came


def mask(token):
    """What may be shown of a secret: its first characters."""
    if not token:
        return "(none)"
    return token[:6] + "…"


def _short(body, limit=160):
    text = body if isinstance(body, str) else repr(body)
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after(response):
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        return None


class Gateway:
    """POST {url}/send/{msgId} with a bearer token; classify whatever comes back."""

    def __init__(self, url, token, connect_timeout=3.05, read_timeout=10.0, pool_size=64):
        self.url = url.rstrip("/")
        self._token = token or ""
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Authorization"] = f"Bearer {self._token}"
        # Proxies are looked up once here, not on every request (a third of the client's CPU), and
        # never for the loopback simulator.
        self.session.trust_env = False
        if not self.url.startswith(("http://127.", "http://localhost")):
            self.session.proxies = requests.utils.get_environ_proxies(self.url)

    @property
    def masked_token(self):
        return mask(self._token)

    def describe(self):
        kind = "local simulator" if self.url.startswith(("http://127.", "http://localhost")) else "gateway"
        return f"{kind} {self.url} token {mask(self._token)}"

    def send(self, msg_id, phone, text):
        started = time.monotonic()
        try:
            response = self.session.post(f"{self.url}/send/{msg_id}", timeout=self.timeout,
                                         json={"id": int(msg_id), "phone": int(phone), "text": text})
        except requests.Timeout as exc:
            return self._verdict(RETRY, None, started, f"timeout: {type(exc).__name__}")
        except requests.ConnectionError as exc:
            return self._verdict(RETRY, None, started, f"connection error: {_short(str(exc), 120)}")
        except requests.RequestException as exc:
            return self._verdict(RETRY, None, started, f"request error: {_short(str(exc), 120)}")
        status = response.status_code
        if status == 200:
            try:
                body = response.json()
            except ValueError:
                return self._verdict(RETRY, status, started, f"unreadable answer: {_short(response.text)}")
            if isinstance(body, dict) and body.get("code") == 0:
                return self._verdict(SENT, status, started)
            return self._verdict(RETRY, status, started, f"unexpected answer: {_short(body)}")
        error = f"HTTP {status}: {_short(response.text)}"
        if status >= 500 or status in RETRYABLE_STATUS:
            return self._verdict(RETRY, status, started, error, _retry_after(response))
        if status == 401:
            # An expired token is the operator's to fix, not the message's fault: keep it pending.
            return self._verdict(RETRY, status, started, error)
        return self._verdict(FAILED, status, started, error)

    def _verdict(self, outcome, status, started, error="", retry_after=None):
        if self._token and self._token in error:  # a gateway that echoes the request must not leak it
            error = error.replace(self._token, mask(self._token))
        return Verdict(outcome, status, round((time.monotonic() - started) * 1000, 2), error,
                       retry_after, time.time())


def gateway_from_env(pool_size=64):
    return Gateway(os.environ.get("PROBE_URL", DEFAULT_URL), os.environ.get("PROBE_TOKEN", ""),
                   connect_timeout=float(os.environ.get("MAILER_CONNECT_TIMEOUT", "3.05")),
                   read_timeout=float(os.environ.get("MAILER_READ_TIMEOUT", "10")),
                   pool_size=pool_size)
