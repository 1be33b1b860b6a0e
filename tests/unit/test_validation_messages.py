"""What an operator reads when a field is refused: the field named, why, and a hint where one helps.
(tests/test_properties.py proves with hypothesis that the validators accept exactly the right
values and raise nothing but ValidationError; these pin the words.)"""
import datetime as dt

import pytest

from domain.clients import clean_client
from domain.mailings import clean_mailing
from domain.validation import (MAX_TAG, MAX_TEXT, ValidationError, quote_value, validate_operator,
                               validate_phone, validate_tag, validate_text, validate_tz)

pytestmark = pytest.mark.unit


def refusal(fn, *args, **kwargs):
    with pytest.raises(ValidationError) as caught:
        fn(*args, **kwargs)
    return caught.value.errors


@pytest.mark.parametrize("typed, hint", [
    ("89001234567", " (did you mean 79001234567?)"),
    ("+7 (900) 123-45-67", " (did you mean 79001234567?)"),
    ("9001234567", " (did you mean 79001234567?)"),
    ("79001", ""),
    ("", ""),
])
def test_a_refused_phone_says_the_format_what_was_typed_and_a_hint(typed, hint):
    assert refusal(validate_phone, typed) == {
        "phone": f"must be 7 followed by 10 digits, like 79001234567; got {typed.strip()!r}{hint}"}


def test_a_phone_is_kept_without_the_space_around_it():
    assert validate_phone("  79001234567\n") == "79001234567"


def test_a_long_value_is_quoted_cut_short_with_its_length():
    assert quote_value("x" * 41) == f"{'x' * 40!r}… (41 characters)"
    assert quote_value("x" * 40) == repr("x" * 40)
    assert refusal(validate_phone, "7" * 100)["phone"].endswith("… (100 characters)")


def test_an_operator_code_is_three_digits_under_the_field_it_came_from():
    assert refusal(validate_operator, "90") == {"operator": "must be 3 digits, like 900; got '90'"}
    assert refusal(validate_operator, "9000", "filter") == {"filter": "must be 3 digits, like 900; got '9000'"}


def test_a_tag_too_long_or_not_one_printable_line_says_why():
    assert refusal(validate_tag, "t" * (MAX_TAG + 1)) == {"tag": f"is {MAX_TAG + 1} characters; at most {MAX_TAG}"}
    assert refusal(validate_tag, "a\nb") == {"tag": "contains a newline; a tag is one line of printable text"}
    assert refusal(validate_tag, "a\tb") == {
        "tag": "contains a control character U+0009 at position 2; a tag is one line of printable text"}
    assert validate_tag(None) == "" and validate_tag("  vip ") == "vip"


def test_an_unknown_zone_suggests_the_form_of_a_known_one():
    assert refusal(validate_tz, "Moscow") == {
        "tz": "unknown time zone 'Moscow'; use an IANA name like Europe/Moscow or UTC"}
    assert validate_tz(" Europe/Moscow ") == "Europe/Moscow"


def test_a_text_is_refused_when_empty_too_long_or_with_control_characters():
    assert refusal(validate_text, " \n ") == {"text": "must not be empty"}
    assert refusal(validate_text, "x" * (MAX_TEXT + 1)) == {"text": f"is {MAX_TEXT + 1} characters; at most {MAX_TEXT}"}
    assert refusal(validate_text, "ok\x1b[31m") == {
        "text": "contains a control character U+001B at position 3; only newlines are allowed"}
    assert refusal(validate_text, "bad \udcff bytes") == {"text": "is not valid UTF-8 (character 5)"}


def test_a_text_keeps_its_newlines_as_line_feeds():
    assert validate_text("line 1\r\nline 2\n") == "line 1\nline 2\n"


def test_the_error_reads_field_colon_why_for_each_field():
    error = ValidationError({"phone": "is wrong", "tz": "is unknown"})
    assert str(error) == "phone: is wrong; tz: is unknown"


def test_a_client_gets_every_field_refused_at_once_and_its_operator_from_the_phone():
    assert set(refusal(clean_client, "123", operator="1", tag="a\nb", tz="Mars/Base")) == {
        "phone", "operator", "tag", "tz"}
    assert clean_client("79161234567", tz="UTC") == {"phone": "79161234567", "tag": "", "tz": "UTC",
                                                     "operator": "916", "tags": [], "name": "", "attrs": "{}"}
    assert set(refusal(clean_client, "79161234567", tz="UTC", name="a\nb", attrs={"Bad": "x"})) == {
        "name", "attr"}
    # several tags: the first is `tag`, each once; only the first may hold the CSV's separator
    assert clean_client("79161234567", tag=["b", "a"], tags="a; c", tz="UTC")["tags"] == ["b", "a", "c"]
    assert clean_client("79161234567", tags="c;d", tz="UTC")["tag"] == "c"
    assert set(refusal(clean_client, "79161234567", tag=["a", "b;c"], tz="UTC")) == {"tag"}


NOW = dt.datetime(2026, 11, 22, 12, 0)


def test_a_mailing_gets_every_field_refused_at_once():
    errors = refusal(clean_mailing, "", "tomorrow-ish", "+1h", window="9-21", now=NOW, tz="UTC")
    assert set(errors) == {"text", "start", "window"}
    assert errors["window"].startswith("must look like 09:00-21:00")


def test_a_mailing_must_end_after_it_starts_and_after_now():
    assert refusal(clean_mailing, "hi", "+2h", "+1h", now=NOW, tz="UTC") == {"end": "must be after the start"}
    assert refusal(clean_mailing, "hi", "2026-11-20T10:00", "2026-11-21T10:00", now=NOW, tz="UTC") == {
        "end": "is in the past"}
    row = clean_mailing("hi", "now", "+1d", window="22:00-06:00", now=NOW, tz="UTC")
    assert (row["start_at"], row["end_at"]) == (NOW, NOW + dt.timedelta(days=1))
    assert (row["window_start"], row["window_end"]) == (22 * 60, 6 * 60)
