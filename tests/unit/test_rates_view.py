"""The caps' arithmetic as the operator reads it (issue 12, part 4): what the caps leave out of an
audience before its end (the editor's and the dry run's warning) and a running mailing's expected
finish (the dashboard's), worked out by hand."""
import datetime as dt

import pytest

from console.format import finish_text
from domain import rates, settings, stats
from domain.rates import Caps, duration_text, limit

T0 = dt.datetime(2030, 1, 1, 9, 0)


def at(seconds):
    return T0 + dt.timedelta(seconds=seconds)


def test_the_total_cap_holds_back_the_share_past_the_end():
    short = limit(T0, at(300), {None: 20_000}, Caps(total=50))
    assert (short.needed, short.there, short.missed, short.operator) == (400, 300, 5_000, None)
    assert short.text() == ("at the cap of 50 messages/s the 20,000 recipients need 6 min 40 s; "
                            "the mailing has 5 min: about 5,000 would not go")
    assert rates.shortfall(T0, at(300), {None: 20_000}, Caps(total=50)) == (400, 300, 5_000)


def test_an_operator_cap_that_binds_is_named_and_holds_back_only_its_recipients():
    caps = Caps(total=100, operators={"900": 20})
    short = limit(T0, at(300), {"900": 12_000, "916": 8_000}, caps)
    # 900 needs 600 s at 20/s (the total: 200 s); 6,000 of its 12,000 go, every one of 916's
    assert (short.needed, short.operator, short.capped, short.missed) == (600, "900", 12_000, 6_000)
    assert short.text() == ("at operator 900's cap of 20 messages/s its 12,000 recipients need 10 min; "
                            "the mailing has 5 min: about 6,000 of the 20,000 recipients would not go")
    # the old figure took the whole audience's share: 10,000
    assert rates.shortfall(T0, at(300), {"900": 12_000, "916": 8_000}, caps)[2] == 6_000


def test_both_caps_binding_count_what_the_total_lets_through():
    caps = Caps(total=1, operators={"916": 0.1})
    short = limit(T0, at(60), {"900": 100, "916": 20}, caps)
    # 916's 20 need 200 s (the slowest); through: 100 + 6 = 106, but the total lets 60 through
    assert (short.operator, short.needed, short.missed) == ("916", 200, 60)


def test_segments_count_each_part_and_a_window_is_said_not_counted():
    assert limit(T0, at(600), {None: 29}, Caps(total=0.1, unit=rates.SEGMENTS), parts=2) is None  # 580 s
    short = limit(T0, at(300), {None: 29}, Caps(total=0.1, unit=rates.SEGMENTS), parts=2, windowed=True)
    assert (short.needed, short.missed) == (580, 14)  # 30 parts in 300 s: 15 messages go
    assert short.text() == ("at the cap of 0.1 segments/s the 29 recipients (2 parts each) need 9 min 40 s; "
                            "the mailing has 5 min: about 14 would not go (not counting its window, "
                            "which leaves it less time)")
    assert short.as_dict()["window_not_counted"] is True


@pytest.mark.parametrize("by_operator, caps", [
    ({None: 15_000}, Caps(total=50)),  # exactly fits
    ({"900": 100}, Caps(operators={"916": 0.01})),  # another operator's cap
    ({None: 10}, Caps()),  # no cap
    ({None: 0}, Caps(total=1)),  # nobody
])
def test_nothing_is_said_when_it_fits(by_operator, caps):
    assert limit(T0, at(300), by_operator, caps) is None


@pytest.mark.parametrize("seconds, said", [(12, "12 s"), (300, "5 min"), (400, "6 min 40 s"),
                                           (3600, "1 h 00 min"), (7500, "2 h 05 min")])
def test_durations(seconds, said):
    assert duration_text(seconds) == said


def running(pending=120, sent=0, end=600, started=-3600, spread=False, state="running"):
    return stats.MailingRow(id=1, state=state, reason="", text="t", operator=None, tag=None, window=None,
                            start_at=at(started), end_at=at(end), started_at=at(started),
                            counts={"pending": pending, "sent": sent}, total=pending + sent, spread=spread)


def test_the_expected_finish_is_the_pending_at_the_last_minutes_rate():
    finish = stats.finish_of(running(pending=120), T0, sent=60)  # 1/s
    assert (finish.at, finish.seconds, finish.missed) == (at(120), 120, 0)
    assert finish_text(finish).plain == "≈ in 2 min"
    assert finish_text(finish, compact=True).plain == "≈ 2 min"  # under 120 columns
    assert finish_text(stats.finish_of(running(pending=30), T0, sent=60)).plain == "≈ in 30 s"


def test_a_finish_after_the_end_says_how_many_will_not_go():
    finish = stats.finish_of(running(pending=100, end=60), T0, sent=30)  # 0.5/s: 30 go by the end
    assert finish.late and finish.missed == 70
    assert finish_text(finish).plain == "after its end: ~70 will not go"
    assert finish_text(finish, compact=True).plain == "~70 won't go"
    assert "red" in str(finish_text(finish).style)


def test_a_mailing_started_within_the_minute_is_timed_since_it_started():
    finish = stats.finish_of(running(pending=100, started=-10), T0, sent=10)  # 1/s over its 10 s
    assert finish.seconds == 100


def test_a_far_finish_is_a_time_of_day_and_unknowns_are_a_dash():
    settings.use(settings.Settings.from_env({"MAILER_TZ": "Europe/Moscow"}))
    finish = stats.finish_of(running(pending=7200, end=86_400), T0, sent=60)
    assert finish_text(finish).plain == "≈ 14:00"  # 09:00 UTC + 2 h, in MAILER_TZ (Moscow, +3)
    assert stats.finish_of(running(), T0, sent=0) is None  # nothing sent lately: unknown
    assert stats.finish_of(running(state="scheduled"), T0, sent=5) is None
    assert finish_text(None).plain == "—"
    assert finish_text(stats.finish_of(running(pending=0), T0, sent=5)).plain == "none pending"
    spread = stats.finish_of(running(spread=True), T0, sent=5, spread_until=at(1800))
    assert finish_text(spread).plain == "spread until 12:30"
    assert finish_text(spread, compact=True).plain == "until 12:30"
    assert finish_text(stats.finish_of(running(pending=0), T0, sent=5), compact=True).plain == "none left"
