"""Property-based tests of the validators and the window / time-zone arithmetic."""
import argparse
import datetime as dt
import io
import unicodedata
import zoneinfo

import pytest
from hypothesis import assume, example, given, settings, strategies as st

import app
import models
from domain import client_import, clients, times, validation
from domain.windows import format_window, in_window, next_window_open, parse_window
from domain.validation import ValidationError
from support import open_database

ZONES = ["UTC", "Europe/Moscow", "Europe/Berlin", "Europe/London", "America/New_York", "America/Santiago",
         "Australia/Sydney", "Australia/Lord_Howe", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Chatham",
         "Pacific/Kiritimati", "Pacific/Apia", "America/St_Johns", "Etc/GMT+12", "Asia/Tehran"]
instants = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2037, 12, 31))
minutes = st.integers(min_value=0, max_value=24 * 60 - 1)
windows = st.tuples(minutes, minutes).filter(lambda w: w[0] != w[1])


@given(st.text(max_size=30))
def test_phone_is_accepted_exactly_when_it_is_7_and_10_digits(text):
    try:
        phone = validation.validate_phone(text)
    except ValidationError as exc:
        assert set(exc.errors) == {"phone"}
        assert not validation.PHONE_RE.fullmatch(text.strip())
    else:
        assert phone == text.strip() and len(phone) == 11 and phone[0] == "7" and phone.isascii()


@given(st.from_regex(r"7\d{10}", fullmatch=True).filter(str.isascii))
def test_every_well_formed_phone_passes_and_gets_its_operator(phone):
    assert clients.clean_client(phone, tz="UTC")["operator"] == phone[1:4]


@given(st.text(max_size=20))
def test_window_parses_or_says_why(text):
    try:
        window = parse_window(text)
    except ValidationError as exc:
        assert set(exc.errors) == {"window"}
    else:
        if window is not None:
            start, end = window
            assert 0 <= start < 1440 and 0 <= end < 1440 and start != end
            assert parse_window(format_window(start, end)) == window


@given(st.text(max_size=40))
def test_times_parse_or_say_why(text):
    now = dt.datetime(2026, 11, 22, 12, 0)
    try:
        when = times.parse_when(text, "start", "Europe/Moscow", now)
    except ValidationError as exc:
        assert set(exc.errors) == {"start"}
    else:
        assert isinstance(when, dt.datetime) and when.tzinfo is None


@settings(deadline=None)  # a zone's first load from disk may take 300 ms on a busy machine: not what is tested
@given(st.text(max_size=40))
def test_zone_is_accepted_exactly_when_iana_knows_it(text):
    try:
        zone = validation.validate_tz(text)
    except ValidationError:
        assert text.strip() not in zoneinfo.available_timezones()
    else:
        zoneinfo.ZoneInfo(zone)


@settings(max_examples=400, deadline=None)
@given(instants, st.sampled_from(ZONES), windows)
def test_next_window_open_is_the_first_open_minute(now, tz, window):
    now = now.replace(second=0, microsecond=0)
    opens = next_window_open(now, tz, window)
    assert opens >= now
    assert in_window(opens, tz, window)
    assert opens - now <= dt.timedelta(hours=50)
    if opens > now:
        # Nothing earlier was open: check the minute before, and a sample of the way there.
        assert not in_window(opens - dt.timedelta(minutes=1), tz, window)
        span = int((opens - now).total_seconds() // 60)
        for k in range(0, span, max(1, span // 50)):
            assert not in_window(now + dt.timedelta(minutes=k), tz, window)


@settings(max_examples=300, deadline=None)
@given(instants, st.sampled_from(ZONES), windows)
def test_in_window_matches_the_local_wall_clock(now, tz, window):
    local = now.replace(tzinfo=dt.timezone.utc).astimezone(zoneinfo.ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    start, end = window
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    assert in_window(now, tz, window) == inside


@given(st.lists(st.tuples(st.text(max_size=14), st.text(max_size=5), st.text(max_size=8),
                          st.sampled_from(["", "UTC", "Europe/Moscow", "Nowhere/City"])), max_size=30))
@settings(max_examples=60, deadline=None)
def test_import_accounts_for_every_row(tmp_path_factory, rows):
    open_database(tmp_path_factory.mktemp("db"))  # a fresh one for each example
    import csv
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(clients.CSV_HEADER)
    writer.writerows(rows)
    out.seek(0)
    report = client_import.import_clients(out)
    assume(report.total > 0)
    assert report.imported + len(report.rejected) == report.total
    assert models.Client.select().count() == report.imported
    for line, _, why in report.rejected:
        assert 2 <= line and why
    models.db.close()


# ---------------------------------------------------------------------------------------------------
# Digits are ASCII; validators refuse, never crash.

NON_ASCII_DIGITS = st.characters(categories=["Nd", "No"]).filter(lambda c: c.isdigit() and not c.isascii())
# The zero of some scripts' digit runs: Arabic-Indic, Extended Arabic-Indic, Devanagari, Bengali,
# Thai, full-width, mathematical bold.
ZEROS = ["\u0660", "\u06f0", "\u0966", "\u09e6", "\u0e50", "\uff10", "\U0001d7ce"]
NOW = dt.datetime(2026, 11, 22, 12, 0)


def when(text):
    return times.parse_when(text, "start", "Europe/Berlin", NOW)


@given(st.text(max_size=12), NON_ASCII_DIGITS, st.text(max_size=12))
def test_a_non_ascii_digit_is_never_accepted(before, digit, after):
    text = before + digit + after
    for validate in (validation.validate_phone, validation.validate_operator, parse_window, when):
        with pytest.raises(ValidationError):
            validate(text)
    with pytest.raises(argparse.ArgumentTypeError):
        app.ID(text)


@given(st.from_regex(r"7[0-9]{10}", fullmatch=True), st.data())
def test_a_phone_with_a_digit_of_another_script_is_refused_with_an_ascii_hint(phone, data):
    i = data.draw(st.integers(0, 10))
    zero = data.draw(st.sampled_from(ZEROS))
    forged = phone[:i] + chr(ord(zero) + int(phone[i])) + phone[i + 1:]
    with pytest.raises(ValidationError) as refusal:
        validation.validate_phone(forged)
    message = refusal.value.errors["phone"]
    assert f"(did you mean {phone}?)" in message and "only the digits 0-9" in message
    hint = message.split("did you mean ")[1].split("?")[0]
    assert hint.isascii() and hint.isdigit()
    window = "09:00-21:00"
    j = data.draw(st.sampled_from([0, 1, 3, 4, 6, 7, 9, 10]))
    with pytest.raises(ValidationError):
        parse_window(window[:j] + chr(ord(zero) + int(window[j])) + window[j + 1:])
    with pytest.raises(ValidationError):
        validation.validate_operator(forged[1:4]) if 1 <= i <= 3 else validation.validate_operator(zero * 3)


def _validators():
    return (validation.validate_phone, validation.validate_operator, validation.validate_tag, validation.validate_tz,
            validation.validate_text, parse_window, when)


# st.text() never draws lone surrogates (what argv makes of bytes that are not UTF-8) and seldom a
# control character or a foreign digit: mix them in.
ANY_CHARACTER = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.characters(categories=["Cc"]),
                          NON_ASCII_DIGITS, st.sampled_from("0123456789:+-TZ. \r\n"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=ANY_CHARACTER, max_size=40)))
@example("+" + "9" * 5000 + "s")
@example("9999-12-31T23:59-05:00")
@example("0001-01-01T00:00+05:00")
@example("+99999999d")
@example("\x1b[31m\x00\udcff")
def test_validators_raise_nothing_but_validation_error(text):
    for validate in _validators():
        try:
            validate(text)
        except ValidationError as exc:
            assert exc.errors and all(isinstance(v, str) for v in exc.errors.values())


@given(st.text(alphabet=ANY_CHARACTER, max_size=40))
def test_an_accepted_text_or_tag_has_no_control_character_but_newline(text):
    try:
        accepted = validation.validate_text(text)
    except ValidationError as exc:
        assert set(exc.errors) == {"text"}
    else:
        assert "\r" not in accepted
        assert all(c == "\n" or unicodedata.category(c) not in ("Cc", "Cs") for c in accepted)
        accepted.encode("utf-8")
    try:
        tag = validation.validate_tag(text)
    except ValidationError as exc:
        assert set(exc.errors) == {"tag"}
    else:
        assert all(unicodedata.category(c) not in ("Cc", "Cs") for c in tag)


def _local(utc, zone):
    return utc.replace(tzinfo=dt.timezone.utc).astimezone(zone).replace(tzinfo=None)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2037, 12, 31)),
       st.sampled_from(ZONES))
@example(dt.datetime(2026, 3, 29, 2, 30), "Europe/Berlin")        # gap: 02:00 CET -> 03:00 CEST
@example(dt.datetime(2026, 10, 25, 2, 30), "Europe/Berlin")       # repeated hour
@example(dt.datetime(2026, 10, 4, 2, 15), "Australia/Lord_Howe")  # a 30-minute gap
@example(dt.datetime(2026, 9, 6, 0, 30), "America/Santiago")      # the gap at midnight
@example(dt.datetime(2011, 12, 30, 12, 0), "Pacific/Apia")        # a whole day skipped
@example(dt.datetime(2026, 3, 8, 2, 59, 59, 999999), "America/New_York")
def test_a_wall_time_is_its_first_instant_or_else_the_jump_over_it(wall, tz):
    zone = zoneinfo.ZoneInfo(tz)
    utc = times.local_to_utc(wall, tz)
    readings = [wall.replace(tzinfo=zone, fold=fold).astimezone(dt.timezone.utc).replace(tzinfo=None)
                for fold in (0, 1)]
    existing = [r for r in readings if _local(r, zone) == wall]
    if existing:  # it happens once, or twice when the clocks go back: the first time
        assert utc == min(existing)
    else:  # the clocks jumped over it: the instant they jumped
        second = dt.timedelta(seconds=1)
        assert _local(utc - second, zone) < wall < _local(utc, zone)
        assert _local(utc, zone) - _local(utc - second, zone) > second
    assert times.parse_when(wall.isoformat(), "start", tz, NOW) == utc


def test_describe_time_shows_a_gap_time_as_the_jump():
    utc = times.parse_when("2026-03-29T02:30", "start", "Europe/Berlin", NOW)
    assert utc == dt.datetime(2026, 3, 29, 1, 0)
    assert times.describe_time(utc, "Europe/Berlin") == "2026-03-29 03:00:00 Europe/Berlin"
