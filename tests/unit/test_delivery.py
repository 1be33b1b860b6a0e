"""The delivery policy as pure functions: what one answer makes of a message (every verdict, under
both in-doubt policies, for a mailing running, cancelled or about to end), the backoff's bounds, and
which claimed messages may go now by their client's window."""
import datetime as dt
from types import SimpleNamespace

import pytest

from domain.delivery import Next, backoff, next_status, split_by_window
from domain.settings import Settings
from domain.vocabulary import (CANCELLED, DOUBT, EXPIRED, FAILED, HOLD, PENDING, RETRY, RETRY_IN_DOUBT,
                               RUNNING, SENT, UNKNOWN)
from domain.windows import parse_window
from engine.gateways.base import Verdict

pytestmark = pytest.mark.unit

ANSWERED = dt.datetime(2026, 11, 22, 12, 0, 0)
LOW = lambda lo, hi: lo  # noqa: E731  (jitter at its least)
HIGH = lambda lo, hi: hi  # noqa: E731  (jitter at its most)


def settings(**changes):
    return Settings(retry_base=1.0, retry_cap=300.0, end_guard=0.5).replace(**changes)


def message(attempts=0, in_doubt=False):
    return SimpleNamespace(attempts=attempts, in_doubt=in_doubt)


def mailing(state=RUNNING, ends_in=3600.0, name=""):
    return SimpleNamespace(state=state, end_at=ANSWERED + dt.timedelta(seconds=ends_in), name=name)


LIVE, CANCELLED_MAILING, ENDING = mailing(name="live"), mailing(CANCELLED, name="cancelled"), mailing(
    ends_in=1.0, name="ending")


# ---------------------------------------------------------------------------------------------------
# next_status: every verdict x policy x mailing

# (verdict, policy, mailing) -> (status, in_doubt, retried). A retry would land 2 s after the answer
# (first attempt, base 2 s, jitter at its most); the ending mailing ends 1 s after the answer.
CASES = [
    (SENT, HOLD, LIVE, SENT, False, False),
    (SENT, HOLD, CANCELLED_MAILING, SENT, False, False),
    (SENT, RETRY_IN_DOUBT, ENDING, SENT, False, False),
    (FAILED, HOLD, LIVE, FAILED, False, False),
    (FAILED, RETRY_IN_DOUBT, CANCELLED_MAILING, FAILED, False, False),
    (FAILED, HOLD, ENDING, FAILED, False, False),
    (RETRY, HOLD, LIVE, PENDING, False, True),
    (RETRY, RETRY_IN_DOUBT, LIVE, PENDING, False, True),
    (RETRY, HOLD, CANCELLED_MAILING, CANCELLED, False, False),
    (RETRY, RETRY_IN_DOUBT, CANCELLED_MAILING, CANCELLED, False, False),
    (RETRY, HOLD, ENDING, EXPIRED, False, False),
    (RETRY, RETRY_IN_DOUBT, ENDING, EXPIRED, False, False),
    # In doubt and held: unknown whatever the mailing, never re-sent by itself.
    (DOUBT, HOLD, LIVE, UNKNOWN, True, False),
    (DOUBT, HOLD, CANCELLED_MAILING, UNKNOWN, True, False),
    (DOUBT, HOLD, ENDING, UNKNOWN, True, False),
    # In doubt and retried: sent again while it can be; if it cannot, unknown, never cancelled or expired.
    (DOUBT, RETRY_IN_DOUBT, LIVE, PENDING, True, True),
    (DOUBT, RETRY_IN_DOUBT, CANCELLED_MAILING, UNKNOWN, True, False),
    (DOUBT, RETRY_IN_DOUBT, ENDING, UNKNOWN, True, False),
]


@pytest.mark.parametrize("outcome, policy, live, status, in_doubt, retried", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2].name}" for c in CASES])
def test_next_status_for_every_verdict_policy_and_mailing(outcome, policy, live, status, in_doubt, retried):
    got = next_status(message(), Verdict(outcome, error="boom"), live, ANSWERED,
                      settings(in_doubt=policy, retry_base=2.0), HIGH)
    assert (got.status, got.in_doubt) == (status, in_doubt)
    if retried:
        assert got.next_attempt_at == ANSWERED + dt.timedelta(seconds=2)
    else:
        assert got.next_attempt_at is None
    assert (got.error == "") == (outcome == SENT)


def test_the_error_says_why_a_message_was_not_retried():
    cancelled = next_status(message(), Verdict(RETRY, error="HTTP 503"), CANCELLED_MAILING, ANSWERED, settings())
    ended = next_status(message(), Verdict(RETRY, error="HTTP 503"), ENDING, ANSWERED, settings(), HIGH)
    held = next_status(message(), Verdict(DOUBT, error="read timeout"), LIVE, ANSWERED, settings(in_doubt=HOLD))
    assert cancelled.error == "mailing cancelled; last error: HTTP 503"
    assert ended.error == "mailing ended before a retry; last error: HTTP 503"
    assert held.error == "read timeout; held, not re-sent (MAILER_IN_DOUBT=hold)"


def test_a_message_once_in_doubt_stays_in_doubt_whatever_the_next_answer():
    earlier_doubt = message(attempts=1, in_doubt=True)
    assert next_status(earlier_doubt, Verdict(SENT), LIVE, ANSWERED, settings()) == Next(SENT, True, None, "")
    retried = next_status(earlier_doubt, Verdict(RETRY, error="503"), LIVE, ANSWERED, settings(), LOW)
    assert (retried.status, retried.in_doubt) == (PENDING, True)
    # It cannot be retried before the end: unknown (it may have arrived), not expired.
    assert next_status(earlier_doubt, Verdict(RETRY, error="503"), ENDING, ANSWERED, settings(), HIGH).status == UNKNOWN
    assert next_status(earlier_doubt, Verdict(RETRY, error="503"), CANCELLED_MAILING, ANSWERED, settings()).status == UNKNOWN


def test_retry_after_longer_than_the_backoff_sets_the_next_attempt():
    got = next_status(message(), Verdict(RETRY, retry_after=120.0), LIVE, ANSWERED, settings(), HIGH)
    assert got.next_attempt_at == ANSWERED + dt.timedelta(seconds=120)


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    got = next_status(message(attempts=5), Verdict(RETRY, retry_after=1.0), LIVE, ANSWERED, settings(), HIGH)
    assert got.next_attempt_at == ANSWERED + dt.timedelta(seconds=32)  # 6th attempt: 1 s * 2**5


def test_retry_after_beyond_the_end_expires_the_message_now():
    got = next_status(message(), Verdict(RETRY, error="429", retry_after=3600.0), mailing(ends_in=600),
                      ANSWERED, settings(), LOW)
    assert (got.status, got.next_attempt_at) == (EXPIRED, None)


def test_no_retry_is_scheduled_within_the_end_guard():
    live = mailing(ends_in=10.0)
    at_guard = next_status(message(), Verdict(RETRY), live, ANSWERED, settings(retry_base=9.5, end_guard=0.5), HIGH)
    before_guard = next_status(message(), Verdict(RETRY), live, ANSWERED, settings(retry_base=9.0, end_guard=0.5), HIGH)
    assert at_guard.status == EXPIRED  # 9.5 s after the answer: exactly the guard
    assert (before_guard.status, before_guard.next_attempt_at) == (PENDING, ANSWERED + dt.timedelta(seconds=9))


def test_the_backoff_grows_with_the_attempts_already_made():
    delays = [next_status(message(attempts=n), Verdict(RETRY), LIVE, ANSWERED, settings(), HIGH).next_attempt_at
              for n in range(4)]
    assert [(d - ANSWERED).total_seconds() for d in delays] == [1, 2, 4, 8]


# ---------------------------------------------------------------------------------------------------
# backoff


@pytest.mark.parametrize("attempts, full", [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0),
                                            (60, 300.0)])
def test_backoff_is_between_half_and_all_of_the_capped_exponential(attempts, full):
    s = settings()
    assert backoff(attempts, s, LOW) == full / 2
    assert backoff(attempts, s, HIGH) == full


def test_backoff_draws_its_jitter_from_zero_to_half_the_delay():
    draws = []
    backoff(4, settings(retry_base=0.5), lambda lo, hi: draws.append((lo, hi)) or 0.0)
    assert draws == [(0, 2.0)]


def test_backoff_with_a_zero_base_retries_at_once():
    assert backoff(7, settings(retry_base=0.0), HIGH) == 0.0


def test_backoff_after_thousands_of_attempts_is_the_cap_not_an_overflow():
    # A mailing that runs for days against a gateway answering 503 retries a message past 1024 times.
    assert backoff(1025, settings(), HIGH) == 300.0
    assert backoff(10**6, settings(retry_base=1e300, retry_cap=600.0), HIGH) == 600.0
    assert backoff(10**6, settings(retry_base=0.0), HIGH) == 0.0


def test_backoff_never_exceeds_the_cap_even_when_the_base_does():
    assert backoff(1, settings(retry_base=50.0, retry_cap=10.0), HIGH) == 10.0


# ---------------------------------------------------------------------------------------------------
# split_by_window

NOW = dt.datetime(2026, 11, 22, 12, 0)  # 15:00 in Moscow (UTC+3), 21:00 in Tokyo (UTC+9)


def row(id, mailing_id, tz):
    return SimpleNamespace(id=id, mailing_id=mailing_id, tz=tz)


def windowed(window, ends_in_hours=48):
    start, end = parse_window(window) if window else (None, None)
    return SimpleNamespace(window_start=start, window_end=end, end_at=NOW + dt.timedelta(hours=ends_in_hours))


def test_a_mailing_without_a_window_sends_everyone_now():
    rows = [row(1, 7, "Asia/Tokyo"), row(2, 7, None)]
    assert split_by_window(rows, {7: windowed(None)}, NOW, "UTC") == (rows, {}, [])


def test_clients_inside_their_window_go_now_and_the_others_wait_for_its_opening():
    rows = [row(1, 7, "Europe/Moscow"), row(2, 7, "Asia/Tokyo"), row(3, 7, "Asia/Tokyo")]
    ready, later, expired = split_by_window(rows, {7: windowed("09:00-18:00")}, NOW, "UTC")
    assert [r.id for r in ready] == [1]
    assert later == {dt.datetime(2026, 11, 23, 0, 0): [2, 3]}  # 09:00 tomorrow in Tokyo
    assert expired == []


def test_a_window_that_opens_only_after_the_end_expires_the_message():
    rows = [row(1, 7, "Asia/Tokyo")]
    ready, later, expired = split_by_window(rows, {7: windowed("09:00-18:00", ends_in_hours=12)}, NOW, "UTC")
    assert (ready, later, [r.id for r in expired]) == ([], {}, [1])


def test_a_window_opening_exactly_at_the_end_is_too_late():
    opens = dt.datetime(2026, 11, 23, 0, 0)  # 09:00 in Tokyo
    m = windowed("09:00-18:00")
    m.end_at = opens
    assert [r.id for r in split_by_window([row(1, 7, "Asia/Tokyo")], {7: m}, NOW, "UTC")[2]] == [1]


def test_a_client_without_a_zone_is_judged_in_the_default_zone():
    rows = [row(1, 7, None), row(2, 7, "")]
    in_moscow = split_by_window(rows, {7: windowed("09:00-18:00")}, NOW, "Europe/Moscow")
    in_tokyo = split_by_window(rows, {7: windowed("09:00-18:00")}, NOW, "Asia/Tokyo")
    assert [r.id for r in in_moscow[0]] == [1, 2]
    assert in_tokyo[0] == [] and in_tokyo[1] == {dt.datetime(2026, 11, 23, 0, 0): [1, 2]}


def test_rows_of_several_mailings_are_judged_each_by_its_own_window():
    rows = [row(1, 7, "Europe/Moscow"), row(2, 8, "Europe/Moscow")]
    ready, later, _ = split_by_window(rows, {7: windowed("09:00-18:00"), 8: windowed("20:00-22:00")}, NOW, "UTC")
    assert [r.id for r in ready] == [1]
    assert later == {dt.datetime(2026, 11, 22, 17, 0): [2]}  # 20:00 in Moscow
