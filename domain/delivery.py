"""The delivery policy, as pure functions: an answer, the mailing and the time in, the message's next
state out. No database, no clock of its own: the engine passes `now` and settings in, and the unit
tests call these directly (tests/unit/test_delivery.py)."""
import datetime as dt
import random
from typing import NamedTuple

from domain.vocabulary import CANCELLED, DOUBT, EXPIRED, FAILED, HOLD, PENDING, SENT, UNKNOWN
from domain.windows import next_window_open


class Next(NamedTuple):
    """What a message becomes after one answered attempt."""
    status: str
    in_doubt: bool
    next_attempt_at: dt.datetime | None  # for a retry
    error: str


def backoff(attempts, settings, rand=random.uniform):
    """Seconds before the next try: exponential, capped, with equal jitter (half fixed, half random)."""
    # 2**1023 is the largest power of two a float holds: past it (a message retried for days) the
    # product would raise OverflowError instead of reaching the cap.
    doublings = min(max(0, attempts - 1), 1023)
    delay = min(settings.retry_cap, settings.retry_base * 2 ** doublings)
    return delay / 2 + rand(0, delay / 2)


def next_status(row, verdict, live, answered, settings, rand=random.uniform):
    """row: the message (.attempts made before this one, .in_doubt); verdict: the answer (.outcome,
    .error, .retry_after); live: its mailing now (.state, .end_at); answered: when the answer came."""
    error = verdict.error
    in_doubt = bool(row.in_doubt) or verdict.outcome == DOUBT
    if verdict.outcome == SENT:
        return Next(SENT, in_doubt, None, "")
    if verdict.outcome == FAILED:
        return Next(FAILED, in_doubt, None, error)
    if verdict.outcome == DOUBT and settings.in_doubt == HOLD:
        return Next(UNKNOWN, True, None, f"{error}; held, not re-sent (MAILER_IN_DOUBT=hold)")
    delay = backoff(row.attempts + 1, settings, rand)
    if verdict.retry_after:
        delay = max(delay, verdict.retry_after)
    next_at = answered + dt.timedelta(seconds=delay)
    final = UNKNOWN if in_doubt else None
    if live.state == CANCELLED:
        return Next(final or CANCELLED, in_doubt, None, f"mailing cancelled; last error: {error}")
    if next_at >= live.end_at - dt.timedelta(seconds=settings.end_guard):
        return Next(final or EXPIRED, in_doubt, None, f"mailing ended before a retry; last error: {error}")
    return Next(PENDING, in_doubt, next_at, error)


def split_by_window(rows, mailings, now, default_tz):
    """Messages whose client is inside the mailing's window now, {open_at: ids} for those whose
    window opens later, and those whose window opens only after the end. rows: .mailing_id, .tz;
    mailings: {id: .window_start, .window_end, .days, .end_at}."""
    ready, later, expired = [], {}, []
    for row in rows:
        mailing = mailings[row.mailing_id]
        window = (mailing.window_start, mailing.window_end) if mailing.window_start is not None else None
        days = getattr(mailing, "days", None)
        if window is None and days is None:
            ready.append(row)
            continue
        opens = next_window_open(now, row.tz or default_tz, window, days)
        if opens <= now:
            ready.append(row)
        elif opens >= mailing.end_at:
            expired.append(row)
        else:
            later.setdefault(opens, []).append(row.id)
    return ready, later, expired
