"""A mailing's daily window in each client's local time: parsing it, and when it is open."""
import datetime as dt
import re
import zoneinfo

from domain.times import UTC
from domain.validation import ValidationError, foreign_digit_note, quote_value


WINDOW_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})[ \t]*-[ \t]*([0-9]{1,2}):([0-9]{2})")


ANY_TIME = "any"  # a window that says so: any time of day, even under MAILER_DEFAULT_WINDOW


def parse_window(value):
    """'HH:MM-HH:MM' in the client's local time -> (start, end) minutes; None for no window (empty,
    or 'any')."""
    if value is None or not str(value).strip() or str(value).strip().lower() == ANY_TIME:
        return None
    value = str(value).strip()
    match = WINDOW_RE.fullmatch(value)
    if not match:
        raise ValidationError({"window": f"must look like 09:00-21:00 (or 22:00-06:00 across "
                                         f"midnight); got {quote_value(value)}{foreign_digit_note(value)}"})
    h1, m1, h2, m2 = map(int, match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValidationError({"window": f"has an impossible time in {value!r}"})
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValidationError({"window": "start and end are equal; leave it empty to send at any time"})
    return start, end


def format_window(start, end):
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def zones_where_open(start_utc, end_utc, window, zones):
    """Of `zones` (the distinct zones of an audience), those where the window opens at some instant
    in [start_utc, end_utc): a client in any other zone could never be sent the mailing.
    Set-based on purpose: a million clients share a few dozen zones."""
    if window is None:
        return sorted(zones)
    if end_utc <= start_utc:
        return []
    return sorted(tz for tz in zones if next_window_open(start_utc, tz, window) < end_utc)



def in_window(now_utc, tz, window):
    start, end = window
    local = now_utc.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(tz))
    minute = local.hour * 60 + local.minute
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def next_window_open(now_utc, tz, window):
    """The first UTC instant at or after `now_utc` when the client's local window is open."""
    if in_window(now_utc, tz, window):
        return now_utc
    zone = zoneinfo.ZoneInfo(tz)
    local = now_utc.replace(tzinfo=UTC).astimezone(zone)
    for days in range(0, 3):
        day = local.date() + dt.timedelta(days=days)
        wall = dt.datetime(day.year, day.month, day.day, window[0] // 60, window[0] % 60)
        candidate = wall.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        if candidate <= now_utc:
            continue
        if candidate.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None) != wall:
            # The opening wall time is skipped by a DST jump: the window opens when the clocks jump.
            return _first_open_after(now_utc, candidate, tz, window)
        return candidate
    raise AssertionError("a daily window opens within two days")


def _first_open_after(lo, hi, tz, window):
    """Bisect to the minute between lo (closed) and hi for the first open instant."""
    while (hi - lo) > dt.timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        if in_window(mid, tz, window):
            hi = mid
        else:
            lo = mid
    hi = hi.replace(second=0, microsecond=0)
    return hi if in_window(hi, tz, window) else hi + dt.timedelta(minutes=1)


