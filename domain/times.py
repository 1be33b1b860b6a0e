"""Time as the operator types it and as the database keeps it.

Every datetime in the database is naive UTC. An operator types `now`, `+10m` / `+2h` / `+1d`, or ISO
8601; a time without an offset is in the operator's zone (MAILER_TZ, else this machine's)."""
import datetime as dt
import re
import threading
import warnings
import zoneinfo

import pendulum

from domain import settings as _settings
from domain.validation import ValidationError, foreign_digit_note, known_zones, quote_value, validate_tz

UTC = dt.timezone.utc


def utcnow():
    """Naive UTC now: the only kind of datetime the database holds."""
    return dt.datetime.now(UTC).replace(tzinfo=None)



def to_naive_utc(value):
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # pendulum.DateTime is refused by the sqlite driver: store a plain datetime.
    return dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                       value.second, value.microsecond)



def operator_zone(settings=None):
    """The operator's zone: MAILER_TZ, else the machine's, else UTC."""
    name = (settings or _settings.current()).tz
    if name:
        return validate_tz(name, "MAILER_TZ")
    try:
        name = pendulum.local_timezone().name
        return name if name in known_zones() else "UTC"
    except Exception:
        return "UTC"


RELATIVE_RE = re.compile(r"\+\s*([0-9]+)\s*([smhdw])", re.ASCII)
RELATIVE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Times outside these (naive UTC) are refused: every zone can still show them (describe_time), and
# nothing overflows when the engine adds or subtracts days around them.
TIME_MIN, TIME_MAX = dt.datetime(1900, 1, 1), dt.datetime(9999, 1, 1)


def local_to_utc(wall, tz):
    """A naive wall-clock time in zone tz -> naive UTC.

    A time in a DST gap (skipped when the clocks jump forward, like 02:30 on the last Sunday of March
    in Europe/Berlin) is the instant the clocks jump (03:00 CEST = 01:00 UTC), not pendulum's
    shift by the gap's length (03:30). An ambiguous time (the hour repeated when the clocks go back)
    is its first occurrence: fold=0, zoneinfo's default; pendulum's own default (fold=1) is the
    second."""
    zone = tz if isinstance(tz, dt.tzinfo) else zoneinfo.ZoneInfo(tz)
    after = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if after.astimezone(zone).replace(tzinfo=None) == wall:
        return after.replace(tzinfo=None)
    # In a gap fold=0 reads the wall time with the offset from before the jump (so it lands after the
    # jump) and fold=1 with the offset from after it (before the jump): the jump lies between them.
    # Transitions fall on whole seconds: bisect for the first second with the new offset.
    new_offset = after.astimezone(zone).utcoffset()
    base = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(microsecond=0)
    lo, hi = 0, int((after - base).total_seconds()) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (base + dt.timedelta(seconds=mid)).astimezone(zone).utcoffset() == new_offset:
            hi = mid
        else:
            lo = mid
    return (base + dt.timedelta(seconds=hi)).replace(tzinfo=None)


def parse_when(value, field, tz=None, now=None):
    """An operator's time -> naive UTC. Accepts 'now', '+10m' / '+2h' / '+1d', or ISO 8601; a time
    without an offset is in the operator's zone (see local_to_utc for DST gaps and repeats)."""
    text = str(value or "").strip()
    tz = tz or operator_zone()
    now = now or utcnow()
    unreadable = ValidationError({field: f"cannot read {quote_value(text)} as a time; use ISO like "
                                         f"2026-12-01T09:00, or now, or +10m / +2h / +1d"
                                         f"{foreign_digit_note(text)}"})
    out_of_range = ValidationError({field: f"{quote_value(text)} is out of range; use a time between "
                                           f"{TIME_MIN.year} and {TIME_MAX.year - 1}"})
    if not text:
        raise ValidationError({field: "is required"})
    if not text.isascii():  # ASCII digits only; and nothing a parser might read loosely
        raise unreadable
    if text.lower() == "now":
        return now
    try:
        match = RELATIVE_RE.fullmatch(text)
        if match:
            when = now + dt.timedelta(**{RELATIVE_UNITS[match.group(2)]: int(match.group(1))})
        else:
            zone = zoneinfo.ZoneInfo(tz) if isinstance(tz, str) else tz
            local_now = now.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
            try:
                with warnings.catch_warnings():
                    # dateutil warns about a zone name it does not know ('EST') and ignores it:
                    # refuse such a time instead of reading it in the operator's zone.
                    warnings.simplefilter("error")
                    parsed = pendulum.parsing.parse(text, strict=False, now=local_now)
            except OverflowError:
                raise
            except Exception:
                parsed = None
            if not isinstance(parsed, dt.datetime):  # unreadable, or a duration or an interval
                raise unreadable
            if parsed.tzinfo is None:
                when = local_to_utc(parsed, zone)
            else:
                when = parsed.astimezone(UTC).replace(tzinfo=None)
            when = dt.datetime(when.year, when.month, when.day, when.hour, when.minute, when.second,
                               when.microsecond)  # a plain datetime, whatever the parser made
    except ValidationError:
        raise
    except (OverflowError, ValueError):  # beyond year 9999, or a number too long to be one
        raise out_of_range from None
    if not TIME_MIN <= when < TIME_MAX:
        raise out_of_range
    return when


def describe_time(value, tz=None):
    """A stored UTC time shown in the operator's zone, with the zone it means."""
    if value is None:
        return ""
    tz = tz or operator_zone()
    local = value.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(tz))
    return f"{local:%Y-%m-%d %H:%M:%S} {tz}"


_never = threading.Event()  # never set: its wait is a sleep


def nap(seconds):
    """Sleep `seconds` (none when not positive). On a condition variable, not time.sleep: under
    libfaketime, with which the tests shift a consumer's wall clock, time.sleep fails with EINVAL."""
    if seconds > 0:
        _never.wait(seconds)
