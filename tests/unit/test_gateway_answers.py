"""What the gateway client makes of parts of an answer without a socket: Retry-After, the token
scrubbed from an error, what is shown of it, and a token refused before it reaches a header."""
import email.utils

import pytest

from domain.validation import ValidationError
from engine.gateways.base import TOKEN_MARK, check_token, mask, scrub
from engine.gateways.http import MAX_RETRY_AFTER, retry_after_seconds

pytestmark = pytest.mark.unit

DATE = "Sun, 22 Nov 2026 12:00:00 GMT"
EPOCH_OF_DATE = email.utils.parsedate_to_datetime(DATE).timestamp()
TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-Abc123"


# ---------------------------------------------------------------------------------------------------
# Retry-After


@pytest.mark.parametrize("value, seconds", [("120", 120.0), ("  7 ", 7.0), ("0", 0.0),
                                            ("86400", MAX_RETRY_AFTER)])
def test_retry_after_in_seconds_is_read_and_capped(value, seconds):
    assert retry_after_seconds(value) == seconds


@pytest.mark.parametrize("value", [None, "", "   ", "-5", "1.5", "soon", "١٢٠", "Sun, 99 Nov 2026 12:00:00 GMT"])
def test_an_absent_or_unreadable_retry_after_is_none(value):
    assert retry_after_seconds(value, DATE) is None


def test_retry_after_as_a_date_counts_from_the_answers_own_date():
    # The answer's Date, not this machine's clock (now is a day off here): the two need not agree.
    assert retry_after_seconds("Sun, 22 Nov 2026 12:01:30 GMT", DATE, now=EPOCH_OF_DATE + 86400) == 90.0


def test_retry_after_as_a_date_without_a_date_header_counts_from_now():
    assert retry_after_seconds("Sun, 22 Nov 2026 12:00:45 GMT", None, now=EPOCH_OF_DATE) == 45.0


def test_retry_after_as_a_date_in_the_past_is_zero_and_far_ahead_is_capped():
    assert retry_after_seconds("Sun, 22 Nov 2026 11:00:00 GMT", DATE) == 0.0
    assert retry_after_seconds("Mon, 23 Nov 2026 12:00:00 GMT", DATE) == MAX_RETRY_AFTER


# ---------------------------------------------------------------------------------------------------
# scrub and mask


def test_scrub_masks_the_whole_token_wherever_it_is_echoed():
    text = f'HTTP 400: {{"echo": "Bearer {TOKEN}", "again": "{TOKEN}"}}'
    scrubbed = scrub(text, TOKEN)
    assert TOKEN not in scrubbed
    assert scrubbed == f'HTTP 400: {{"echo": "Bearer {TOKEN_MARK}", "again": "{TOKEN_MARK}"}}'


def test_scrub_masks_a_piece_of_the_token_cut_at_either_end():
    head, tail = TOKEN[:12], TOKEN[-9:]
    assert scrub(f"answer cut: ...{head}", TOKEN) == f"answer cut: ...{TOKEN_MARK}"
    assert scrub(f"{tail} and more", TOKEN) == f"{TOKEN_MARK} and more"


def test_scrub_leaves_pieces_shorter_than_seven_characters_and_unrelated_text():
    six = TOKEN[20:26]
    assert scrub(f"id {six} ok", TOKEN) == f"id {six} ok"
    assert scrub("HTTP 503: try later", TOKEN) == "HTTP 503: try later"


def test_scrub_masks_a_short_token_only_whole():
    assert scrub("token abc12 and abc1", "abc12") == f"token {TOKEN_MARK} and abc1"


def test_scrub_without_a_token_or_a_text_changes_nothing():
    assert scrub("HTTP 500", "") == "HTTP 500"
    assert scrub("", TOKEN) == ""


def test_mask_shows_only_the_first_six_characters():
    assert mask(TOKEN) == "eyJhbG…"
    assert mask("") == "(none)" and mask(None) == "(none)"


# ---------------------------------------------------------------------------------------------------
# check_token


def test_a_sendable_token_or_none_is_accepted_as_it_is():
    assert check_token(TOKEN) == TOKEN
    assert check_token("") == ""


@pytest.mark.parametrize("token, why", [(TOKEN + "\r", "white space around it"),
                                        (" " + TOKEN, "white space around it"),
                                        ("abc def", "at position 4"),
                                        ("abcé", "at position 4")])
def test_a_token_that_cannot_go_into_a_header_is_refused_without_showing_it(token, why):
    with pytest.raises(ValidationError) as refusal:
        check_token(token)
    assert list(refusal.value.errors) == ["PROBE_TOKEN"]
    assert why in refusal.value.errors["PROBE_TOKEN"]
    assert token.strip() not in str(refusal.value)
