"""Property-based tests of the validators and the window / time-zone arithmetic."""
import datetime as dt
import io
import zoneinfo

from hypothesis import assume, given, settings, strategies as st

import models
from models import ValidationError

ZONES = ["UTC", "Europe/Moscow", "Europe/Berlin", "Europe/London", "America/New_York", "America/Santiago",
         "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham",
         "Pacific/Kiritimati", "Pacific/Apia", "America/St_Johns", "Etc/GMT+12", "Asia/Tehran"]
instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2037, 12, 31))
minutes = st.integers(min_value=0, max_value=24 * 60 - 1)
windows = st.tuples(minutes, minutes).filter(lambda w: w[0] != w[1])


@given(st.text(max_size=30))
def test_phone_is_accepted_exactly_when_it_is_7_and_10_digits(text):
    try:
        phone = models.validate_phone(text)
    except ValidationError as exc:
        assert set(exc.errors) == {"phone"}
        assert not models.PHONE_RE.fullmatch(text.strip())
    else:
        assert phone == text.strip() and len(phone) == 11 and phone[0] == "7" and phone.isascii()


@given(st.from_regex(r"7\d{10}", fullmatch=True).filter(str.isascii))
def test_every_well_formed_phone_passes_and_gets_its_operator(phone):
    assert models.clean_client(phone, tz="UTC")["operator"] == phone[1:4]


@given(st.text(max_size=20))
def test_window_parses_or_says_why(text):
    try:
        window = models.parse_window(text)
    except ValidationError as exc:
        assert set(exc.errors) == {"window"}
    else:
        if window is not None:
            start, end = window
            assert 0 <= start < 1440 and 0 <= end < 1440 and start != end
            assert models.parse_window(models.format_window(start, end)) == window


@given(st.text(max_size=40))
def test_times_parse_or_say_why(text):
    now = dt.datetime(2026, 11, 22, 12, 0)
    try:
        when = models.parse_when(text, "start", "Europe/Moscow", now)
    except ValidationError as exc:
        assert set(exc.errors) == {"start"}
    else:
        assert isinstance(when, dt.datetime) and when.tzinfo is None


@given(st.text(max_size=40))
def test_zone_is_accepted_exactly_when_iana_knows_it(text):
    try:
        zone = models.validate_tz(text)
    except ValidationError:
        assert text.strip() not in zoneinfo.available_timezones()
    else:
        zoneinfo.ZoneInfo(zone)


@settings(max_examples=400, deadline=None)
@given(instants, st.sampled_from(ZONES), windows)
def test_next_window_open_is_the_first_open_minute(now, tz, window):
    now = now.replace(second=0, microsecond=0)
    opens = models.next_window_open(now, tz, window)
    assert opens >= now
    assert models.in_window(opens, tz, window)
    assert opens - now <= dt.timedelta(hours=50)
    if opens > now:
        # Nothing earlier was open: check the minute before, and a sample of the way there.
        assert not models.in_window(opens - dt.timedelta(minutes=1), tz, window)
        span = int((opens - now).total_seconds() // 60)
        for k in range(0, span, max(1, span // 50)):
            assert not models.in_window(now + dt.timedelta(minutes=k), tz, window)


@settings(max_examples=300, deadline=None)
@given(instants, st.sampled_from(ZONES), windows)
def test_in_window_matches_the_local_wall_clock(now, tz, window):
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(zoneinfo.ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    start, end = window
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    assert models.in_window(now, tz, window) == inside


@given(st.lists(st.tuples(st.text(max_size=14), st.text(max_size=5), st.text(max_size=8),
                          st.sampled_from(["", "UTC", "Europe/Moscow", "Nowhere/City"])), max_size=30))
@settings(max_examples=60, deadline=None)
def test_import_accounts_for_every_row(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("db") / "m.db"
    models.open_database(f"sqlite:///{path}")
    import csv
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(models.CSV_HEADER)
    writer.writerows(rows)
    out.seek(0)
    report = models.import_clients(out)
    assume(report.total > 0)
    assert report.imported + len(report.rejected) == report.total
    assert models.Client.select().count() == report.imported
    for line, _, why in report.rejected:
        assert 2 <= line and why
    models.db.close()
