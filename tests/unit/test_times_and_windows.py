"""Times as an operator types them and windows in a client's local time, around DST changes: a wall
time the clocks skip is the jump, a wall time they repeat is its first occurrence, a day lasts 23
or 25 hours. (tests/test_properties.py checks local_to_utc and next_window_open over random
instants and zones; tests/test_windows.py pins next_window_open's cases.)"""
import datetime as dt

import pytest

from domain.times import describe_time, local_to_utc, parse_when, to_naive_utc
from domain.validation import ValidationError
from domain import windows
from domain.windows import format_window, in_window, parse_window
from ops.report import local_day_bounds

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 11, 22, 12, 0)  # naive UTC
BERLIN = "Europe/Berlin"  # 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET


def when(text, tz=BERLIN):
    return parse_when(text, "start", tz, NOW)


# ---------------------------------------------------------------------------------------------------
# parse_when


def test_now_and_relative_times_count_from_now():
    assert when("now") == when(" NOW ") == NOW
    assert when("+10m") == NOW + dt.timedelta(minutes=10)
    assert when("+ 2h") == NOW + dt.timedelta(hours=2)
    assert when("+1d") == NOW + dt.timedelta(days=1)
    assert when("+1w") == NOW + dt.timedelta(weeks=1)


def test_a_time_without_an_offset_is_in_the_operators_zone_and_with_one_is_not():
    assert when("2026-07-01T09:00") == dt.datetime(2026, 7, 1, 7, 0)  # CEST, UTC+2
    assert when("2026-12-01T09:00") == dt.datetime(2026, 12, 1, 8, 0)  # CET, UTC+1
    assert when("2026-12-01T09:00+05:00") == dt.datetime(2026, 12, 1, 4, 0)
    assert when("2026-12-01T09:00Z", tz="Asia/Tokyo") == dt.datetime(2026, 12, 1, 9, 0)


def test_a_wall_time_skipped_by_the_clocks_is_the_jump():
    assert when("2026-03-29T02:30") == dt.datetime(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert when("2026-03-29T01:59") == dt.datetime(2026, 3, 29, 0, 59)  # CET, before the gap
    assert when("2026-03-29T03:00") == dt.datetime(2026, 3, 29, 1, 0)


def test_a_wall_time_the_clocks_repeat_is_its_first_occurrence():
    assert when("2026-10-25T02:30") == dt.datetime(2026, 10, 25, 0, 30)  # 02:30 CEST, not CET (01:30)
    assert when("2026-10-25T03:00") == dt.datetime(2026, 10, 25, 2, 0)  # after the repeat: CET


def test_a_repeated_hour_shows_both_of_its_instants_by_the_same_wall_time():
    first, second = dt.datetime(2026, 10, 25, 0, 30), dt.datetime(2026, 10, 25, 1, 30)
    assert describe_time(first, BERLIN) == describe_time(second, BERLIN) == "2026-10-25 02:30:00 Europe/Berlin"


@pytest.mark.parametrize("typed, why", [
    ("", "is required"),
    ("next tuesday", "cannot read 'next tuesday' as a time"),
    ("10:00 EST", "cannot read '10:00 EST' as a time"),
    ("P1D", "cannot read 'P1D' as a time"),
    ("1899-12-31T00:00Z", "'1899-12-31T00:00Z' is out of range"),
    ("+99999999d", "'+99999999d' is out of range"),
])
def test_an_unreadable_or_impossible_time_is_refused_under_its_field(typed, why):
    with pytest.raises(ValidationError) as refusal:
        parse_when(typed, "end", BERLIN, NOW)
    assert list(refusal.value.errors) == ["end"]
    assert refusal.value.errors["end"].startswith(why)


def test_local_to_utc_takes_a_zone_object_or_a_name():
    import zoneinfo
    wall = dt.datetime(2026, 10, 25, 2, 30)
    assert local_to_utc(wall, zoneinfo.ZoneInfo(BERLIN)) == local_to_utc(wall, BERLIN) == dt.datetime(2026, 10, 25, 0, 30)


def test_aware_times_are_stored_as_naive_utc():
    aware = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    assert to_naive_utc(aware) == dt.datetime(2026, 7, 1, 6, 0)
    assert to_naive_utc(None) is None


# ---------------------------------------------------------------------------------------------------
# windows


def test_a_window_reads_and_writes_the_same():
    assert parse_window(" 9:05 - 21:30 ") == (545, 1290)
    assert format_window(545, 1290) == "09:05-21:30"
    assert parse_window("") is None and parse_window(None) is None


@pytest.mark.parametrize("typed, why", [
    ("09:00-09:00", "start and end are equal; leave it empty to send at any time"),
    ("24:00-06:00", "has an impossible time in '24:00-06:00'"),
    ("09:60-10:00", "has an impossible time in '09:60-10:00'"),
    ("9am-5pm", "must look like 09:00-21:00 (or 22:00-06:00 across midnight); got '9am-5pm'"),
])
def test_a_bad_window_says_why(typed, why):
    with pytest.raises(ValidationError) as refusal:
        parse_window(typed)
    assert refusal.value.errors == {"window": why}


def test_a_window_in_the_skipped_hour_is_shut_while_the_clocks_jump_over_it():
    window = parse_window("02:00-03:00")
    assert not in_window(dt.datetime(2026, 3, 29, 0, 59), BERLIN, window)  # 01:59 CET
    assert not in_window(dt.datetime(2026, 3, 29, 1, 0), BERLIN, window)  # 03:00 CEST


def test_a_window_in_the_repeated_hour_is_open_both_times():
    window = parse_window("02:00-03:00")
    assert in_window(dt.datetime(2026, 10, 25, 0, 30), BERLIN, window)  # 02:30 CEST
    assert in_window(dt.datetime(2026, 10, 25, 1, 30), BERLIN, window)  # 02:30 CET
    assert not in_window(dt.datetime(2026, 10, 25, 2, 0), BERLIN, window)  # 03:00 CET


def test_a_local_day_lasts_23_hours_in_spring_and_25_in_autumn():
    spring = local_day_bounds(dt.date(2026, 3, 29), BERLIN)
    autumn = local_day_bounds(dt.date(2026, 10, 25), BERLIN)
    assert spring[1] - spring[0] == dt.timedelta(hours=23)
    assert autumn == (dt.datetime(2026, 10, 24, 22, 0), dt.datetime(2026, 10, 25, 23, 0))


# -- weekdays (issue 12, part 5) ---------------------------------------------------------------------

@pytest.mark.parametrize("text, days", [("mon-fri", "mon-fri"), ("MON,wed, fri", "mon,wed,fri"),
                                        ("sat-sun", "sat-sun"), ("fri-mon", "mon,fri-sun"),
                                        ("mon-sun", None), ("any", None), ("", None)])
def test_weekdays_are_read_and_said_back(text, days):
    assert windows.format_days(windows.parse_days(text)) == days


@pytest.mark.parametrize("bad", ["monday", "mon-", "mon--fri", "1-5", "пн-пт"])
def test_weekdays_that_are_not_are_refused_by_field(bad):
    with pytest.raises(ValidationError) as caught:
        windows.parse_days(bad)
    assert caught.value.errors["days"].startswith("must be days such as mon-fri")


def test_a_window_across_midnight_belongs_to_the_day_it_opened():
    fri = windows.parse_days("fri")
    night = (22 * 60, 6 * 60)
    saturday_3am = dt.datetime(2026, 3, 28, 3, 0)  # Europe/London is UTC until the 29th
    sunday_3am = dt.datetime(2026, 3, 29, 0, 30)  # 00:30 UTC = 00:30 GMT, opened on Saturday
    assert windows.in_window(saturday_3am, "Europe/London", night, fri)
    assert not windows.in_window(sunday_3am, "Europe/London", night, fri)


def test_the_next_opening_skips_the_other_days_across_a_dst_change():
    weekdays = windows.parse_days("mon-fri")
    friday_night = dt.datetime(2026, 3, 27, 22, 0)  # 22:00 GMT, Friday: closed
    # British Summer Time starts on Sunday the 29th: Monday 09:00 BST is 08:00 UTC
    assert windows.next_window_open(friday_night, "Europe/London", (9 * 60, 21 * 60), weekdays) == \
        dt.datetime(2026, 3, 30, 8, 0)
    # no hours, only days: open all Friday; from Saturday, Monday's local midnight (in BST)
    assert windows.next_window_open(friday_night, "Europe/London", None, weekdays) == friday_night
    saturday_noon = dt.datetime(2026, 3, 28, 12, 0)
    assert windows.next_window_open(saturday_noon, "Europe/London", None, weekdays) == dt.datetime(2026, 3, 29, 23, 0)
    # open now: now
    monday_noon = dt.datetime(2026, 3, 30, 11, 0)
    assert windows.next_window_open(monday_noon, "Europe/London", (9 * 60, 21 * 60), weekdays) == monday_noon


# -- the close of a window's opening (a spread mailing goes until it: issue 12, part 4) --------------

def close(at, window, days=None, tz=BERLIN):
    return windows.window_close(at, tz, parse_window(window) if window else None,
                                windows.parse_days(days) if days else None)


def test_a_window_closes_at_its_end_the_same_day_and_across_midnight_the_next():
    assert close(dt.datetime(2026, 11, 22, 12, 0), "09:00-21:00") == dt.datetime(2026, 11, 22, 20, 0)
    # opened at 23:00 CET on the 22nd, or in its small hours (00:30 CET on the 23rd): 06:00 on the 23rd
    assert close(dt.datetime(2026, 11, 22, 22, 0), "22:00-06:00") == dt.datetime(2026, 11, 23, 5, 0)
    assert close(dt.datetime(2026, 11, 22, 23, 30), "22:00-06:00") == dt.datetime(2026, 11, 23, 5, 0)
    # a window that ends at midnight closes at the next local midnight
    assert close(dt.datetime(2026, 11, 22, 12, 0), "09:00-00:00") == dt.datetime(2026, 11, 22, 23, 0)


def test_a_closing_time_the_clocks_skip_closes_the_window_when_they_jump():
    # 2026-03-29: 02:00 CET -> 03:00 CEST; a window until 02:30 shuts at the jump (01:00 UTC)
    assert close(dt.datetime(2026, 3, 29, 0, 30), "01:00-02:30") == dt.datetime(2026, 3, 29, 1, 0)
    assert not in_window(dt.datetime(2026, 3, 29, 1, 0), BERLIN, parse_window("01:00-02:30"))
    # across midnight on the night of the jump: 22:00 CET to 06:00 CEST is 7 hours, not 8
    assert close(dt.datetime(2026, 3, 28, 21, 0), "22:00-06:00") == dt.datetime(2026, 3, 29, 4, 0)


def test_a_closing_time_the_clocks_repeat_closes_the_window_the_first_time():
    # 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 comes at 00:30 UTC and again at 01:30 UTC
    assert close(dt.datetime(2026, 10, 24, 23, 0), "01:00-02:30") == dt.datetime(2026, 10, 25, 0, 30)
    # the second pass of the repeated hour is open again (02:00-02:30 CET): it closes at its 02:30
    assert close(dt.datetime(2026, 10, 25, 1, 10), "01:00-02:30") == dt.datetime(2026, 10, 25, 1, 30)


def test_days_without_hours_are_one_opening_until_a_day_not_among_them():
    # Monday 2026-11-23 noon, mon-fri: open until Saturday's local midnight
    assert close(dt.datetime(2026, 11, 23, 11, 0), None, "mon-fri") == dt.datetime(2026, 11, 27, 23, 0)
    # fri-mon wraps the week: from Saturday until Tuesday's midnight
    assert close(dt.datetime(2026, 11, 28, 11, 0), None, "fri-mon") == dt.datetime(2026, 11, 30, 23, 0)
    # no window and every day: it never closes
    assert close(dt.datetime(2026, 11, 23, 11, 0), None, None) is None
    # the days' close across a DST change: Saturday 2026-03-28 to Monday's midnight in CEST
    assert close(dt.datetime(2026, 3, 28, 11, 0), None, "sat-sun") == dt.datetime(2026, 3, 29, 22, 0)


def test_a_window_with_days_closes_its_own_opening_across_midnight():
    # fridays 22:00-06:00 in London: opened Friday 2026-03-27 at 22:00 GMT, closed Saturday 06:00 GMT
    assert close(dt.datetime(2026, 3, 27, 22, 0), "22:00-06:00", "fri", tz="Europe/London") == \
        dt.datetime(2026, 3, 28, 6, 0)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "Asia/Kathmandu"])
@pytest.mark.parametrize("window, days", [("09:00-21:00", None), ("22:00-06:00", None), ("00:30-02:30", "sat"),
                                          (None, "mon-fri"), ("23:00-00:00", "sun")])
def test_the_close_is_the_first_shut_instant_after_every_opening_of_a_year(tz, window, days):
    """From each opening (next_window_open every 29 hours over a year, DST changes included) the
    window stays open until its close, and is shut there."""
    span, mask = parse_window(window) if window else None, windows.parse_days(days) if days else None
    at = dt.datetime(2026, 1, 1)
    while at < dt.datetime(2027, 1, 1):
        opens = windows.next_window_open(at, tz, span, mask)
        shut = windows.window_close(opens, tz, span, mask)
        assert shut > opens
        assert not in_window(shut, tz, span, mask), (opens, shut)
        step = (shut - opens) / 16
        assert all(in_window(opens + step * i, tz, span, mask) for i in range(16)), (opens, shut)
        assert in_window(shut - dt.timedelta(seconds=1), tz, span, mask), (opens, shut)
        at += dt.timedelta(hours=29)
