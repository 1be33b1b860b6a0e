"""What every gateway backend is, and what they share: the verdict on one attempt, the health the
attempts show, and secrets kept out of what is shown.

A backend's `send(msg_id, phone, text, send_by)` makes one attempt and returns its Verdict, or None
when the request could not start before `send_by` (monotonic): then nothing left this process. The
dispatcher turns each verdict into the message's next state through the delivery policy, whatever
the backend, so every backend sorts its answers into the same four outcomes:
- `sent`: the gateway took the message.
- `retry`: it certainly did not (`halt` when the answer is about us as a whole: bad credentials, a
  moved URL; sending pauses for everyone).
- `failed`: it refused this message for good.
- `doubt`: it may have taken it, and no valid answer says so; MAILER_IN_DOUBT decides.
"""
import datetime as dt
import threading
import time
from dataclasses import dataclass

from domain.stats import GatewayHealth, gateway_answered
from domain.validation import ValidationError

ERROR_CAP = 500  # characters of an error kept (after the secrets are scrubbed from it)


@dataclass(frozen=True)
class Verdict:
    outcome: str  # sent, retry, failed or doubt
    http_status: int | None = None
    latency_ms: float | None = None
    error: str = ""
    retry_after: float | None = None
    at: float = 0.0  # epoch seconds the answer (or the error) came
    halt: bool = False  # the gateway refuses us as a whole: pause sending for everyone
    ref: str = ""  # the gateway's own id of the message, when it gives one (SMS Aero does)


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


def check_token(token, variable="PROBE_TOKEN"):
    """A secret that cannot go into a header is an operator's mistake to show at start-up, not a
    header error (which would print part of it) at the first send."""
    if not token:
        return token
    if token != token.strip():
        raise ValidationError({variable: "has white space around it (a line end from a "
                                         "CRLF env file?); remove it"})
    bad = next((i for i, c in enumerate(token) if not "\x21" <= c <= "\x7e"), None)
    if bad is not None:
        raise ValidationError({variable: f"has a character that cannot be sent in a "
                                         f"header at position {bad + 1}"})
    return token


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

    def note(self, verdict, answered=None):
        at = verdict.at or time.time()
        if answered is None:
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
    """One backend. Subclasses make the attempt (`_send`) and say what they are; `send` folds each
    verdict into `health`, which the heartbeat carries to the dashboard."""
    name = ""  # MAILER_GATEWAY's value for it
    local = False  # nothing it sends leaves this machine
    # What an operator fixes when the gateway refuses us as a whole: what it refused, and the variables.
    refused, credentials = "the credentials", ""

    def __init__(self):
        self.health = Health()

    def send(self, msg_id, phone, text, send_by=None):
        """One attempt; None if it could not start before `send_by` (monotonic): then nothing left."""
        verdict = self._send(msg_id, phone, text, send_by)
        if verdict is not None:
            self.health.note(verdict, self._answered(verdict))
        return verdict

    def _answered(self, verdict):
        """Whether the verdict shows the gateway answering (None: as an HTTP answer would)."""
        return None

    def pause_reason(self, verdict):
        """What the dashboard and the log say when this halting answer pauses sending for everyone:
        what the gateway refused and what the operator fixes."""
        return (f"the gateway refused {self.refused} ({verdict.error}); sending is paused for everyone: "
                f"set a valid {self.credentials} and restart the consumer")

    def _send(self, msg_id, phone, text, send_by):
        raise NotImplementedError

    def describe(self):
        """The backend and where it sends, credentials masked: the heartbeat, `mailer health` and the
        dashboard show it."""
        raise NotImplementedError

    def request_record(self, msg_id, phone, text):
        """What the attempt's log record says was sent, and where (credentials masked)."""
        raise NotImplementedError
