"""The gateway's health as pure rules (domain.stats): which attempts count as an answer, how answers
folded in any order make one consumer's health, and how several consumers' make the dashboard's."""
import datetime as dt

import pytest

from domain.stats import GatewayHealth, combined_health, gateway_answered
from domain.vocabulary import DOUBT, FAILED, RETRY, SENT

pytestmark = pytest.mark.unit

T0 = dt.datetime(2026, 11, 22, 12, 0, 0)
REFUSED = "not sent: NewConnectionError: [Errno 111] Connection refused"


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("outcome, status, answered", [
    (SENT, 200, True),
    (FAILED, 400, True),
    (RETRY, 503, True),  # the gateway answers, with an error: it is there
    (RETRY, 401, True),
    (RETRY, 200, True),  # a readable 200 that says no
    (RETRY, None, False),  # refused or timed-out connect
    (DOUBT, None, False),  # reset, read timeout, the deadline
    (DOUBT, 200, False),  # garbage, cut off, over the cap
    (DOUBT, 103, False),  # only an interim answer
])
def test_what_counts_as_an_answer(outcome, status, answered):
    assert gateway_answered(outcome, status) is answered


def test_nothing_known_before_the_first_attempt():
    health = GatewayHealth()
    assert not health.failing and health.ok_at is None and health.cause == ""


def test_failing_since_the_first_unanswered_attempt_after_the_last_answer_with_the_last_cause():
    health = (GatewayHealth().noted(True, at(0)).noted(False, at(5), "reset")
              .noted(False, at(7), REFUSED))
    assert health.failing
    assert (health.ok_at, health.failing_since, health.failed_at, health.cause) == (at(0), at(5), at(7), REFUSED)


def test_an_answer_after_the_last_failure_clears_it():
    health = GatewayHealth().noted(False, at(5), REFUSED).noted(True, at(9))
    assert not health.failing and health.ok_at == at(9)


def test_answers_arriving_out_of_order_do_not_clear_a_later_failure():
    # Sending threads hand their verdicts back in any order: an answer that came before the
    # last failure says nothing about now.
    health = GatewayHealth().noted(False, at(5), REFUSED).noted(True, at(3))
    assert health.failing and health.failing_since == at(5) and health.ok_at == at(3)


def test_a_failure_older_than_the_last_answer_is_not_a_failure_now():
    health = GatewayHealth().noted(True, at(9)).noted(False, at(5), REFUSED)
    assert not health.failing and health.failed_at == at(5)


def test_an_older_failure_moves_since_back_but_keeps_the_newest_cause():
    health = GatewayHealth().noted(False, at(7), REFUSED).noted(False, at(5), "reset")
    assert (health.failing_since, health.failed_at, health.cause) == (at(5), at(7), REFUSED)


def test_several_consumers_fail_when_any_does_with_the_latest_cause():
    fine = GatewayHealth().noted(True, at(10))
    cut_off = GatewayHealth().noted(False, at(4), "timeout").noted(False, at(8), REFUSED)
    other = GatewayHealth().noted(False, at(6), "reset")
    combined = combined_health([fine, cut_off, other])
    assert combined.failing
    assert (combined.ok_at, combined.failing_since, combined.failed_at, combined.cause) == (at(10), at(4), at(8), REFUSED)
    assert combined_health([fine, GatewayHealth()]) == GatewayHealth(ok_at=at(10))
    assert combined_health([]) == GatewayHealth()


@pytest.mark.parametrize("seed", range(20))
def test_the_engines_tracker_folds_verdicts_as_the_rule_does(seed):
    """engine.gateways.base.Health defers answers while all is well (the send path's fast path): whatever
    the order verdicts come in, it ends where folding each by the rule ends."""
    import random

    from engine.gateways.base import Health, Verdict, _utc

    rng = random.Random(seed)
    base = 1_800_000_000.0
    verdicts = [Verdict(*rng.choice([(SENT, 200), (RETRY, 503), (RETRY, None), (DOUBT, None), (DOUBT, 200)]),
                        error=f"cause {i}", at=base + rng.uniform(0, 60)) for i in range(40)]
    tracker, rule = Health(), GatewayHealth()
    for i, verdict in enumerate(verdicts):
        tracker.note(verdict)
        answered = gateway_answered(verdict.outcome, verdict.http_status)
        rule = rule.noted(answered, _utc(verdict.at), "" if answered else verdict.error)
        if i % 7 == 6:  # read now and then, as the heartbeat does: runs of answers stay deferred
            assert tracker.current() == rule
    assert tracker.current() == rule
