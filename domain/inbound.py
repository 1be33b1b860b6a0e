"""Replies clients send, as a gateway forwards them (POST /inbound): which of them refuse mailings.

A reply refuses when its first word, trimmed, case-folded and without trailing punctuation, is STOP
or СТОП ("stop", "Stop!", "стоп пожалуйста"). Anything else is left alone: a reply is no command,
and guessing at "no thanks" would take someone off mailings they asked for."""
import re

STOP_WORDS = frozenset({"stop", "стоп"})
MAX_REASON = 200


def is_stop(text):
    words = (text or "").split(maxsplit=1)
    return bool(words) and words[0].casefold().rstrip(".!,;:") in STOP_WORDS


def phone_of(phone):
    """The phone as a gateway sends it: E.164's leading + taken off (validated by the stop list)."""
    return re.sub(r"^\+", "", (phone or "").strip())


def reason_of(text):
    """The reply kept as the entry's reason: on one line, cut short."""
    reply = " ".join("".join(c for c in (text or "") if c.isprintable() or c.isspace()).split())
    return f"replied: {reply}"[:MAX_REASON]
