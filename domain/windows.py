"""A mailing's daily window in each client's local time: parsing it, and when it is open."""
import datetime as dt
import re
import zoneinfo

from domain.times import UTC, local_to_utc
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


def zones_where_open(start_utc, end_utc, window, zones, days=None):
    """Of `zones` (the distinct zones of an audience), those where the window opens (on one of
    `days`) at some instant in [start_utc, end_utc): a client in any other zone could never be sent
    the mailing. Set-based on purpose: a million clients share a few dozen zones."""
    if window is None and days is None:
        return sorted(zones)
    if end_utc <= start_utc:
        return []
    return sorted(tz for tz in zones if next_window_open(start_utc, tz, window, days) < end_utc)



DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
EVERY_DAY = (1 << 7) - 1


def parse_days(value):
    """'mon-fri', 'mon,wed,fri', 'sat-sun', 'fri-mon' (across the week's end) -> a bitmask of
    weekdays (bit 0 Monday); None for every day (empty, or 'any')."""
    if value is None or not str(value).strip() or str(value).strip().lower() == ANY_TIME:
        return None
    text = str(value).strip().lower()
    mask = 0
    for part in text.split(","):
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or not all(e in DAY_NAMES for e in ends):
            raise ValidationError({"days": f"must be days such as mon-fri or mon,wed,fri (names: "
                                           f"{', '.join(DAY_NAMES)}); got {quote_value(str(value))}"})
        first, last = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[-1])
        day = first
        while True:  # fri-mon wraps round the week's end
            mask |= 1 << day
            if day == last:
                break
            day = (day + 1) % 7
    return None if mask == EVERY_DAY else mask


def format_days(mask):
    """'mon-fri', 'mon,wed,fri', 'sat-sun' (None: every day)."""
    if mask is None:
        return None
    days = [i for i in range(7) if mask >> i & 1]
    runs, start = [], days[0]
    for prev, day in zip(days, days[1:] + [None]):
        if day != prev + 1:
            runs.append(DAY_NAMES[start] if start == prev else f"{DAY_NAMES[start]}-{DAY_NAMES[prev]}")
            start = day
    return ",".join(runs)


def _opening_day(local, window):
    """The local date whose window `local` (an instant inside it) belongs to: a window across
    midnight that opened yesterday belongs to yesterday."""
    if window is not None and window[0] > window[1] and local.hour * 60 + local.minute < window[1]:
        return local.date() - dt.timedelta(days=1)
    return local.date()


def in_window(now_utc, tz, window, days=None):
    """Is the client's local window open now (on one of `days`: a bitmask, None for every day)?"""
    local = now_utc.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(tz))
    if window is not None:
        start, end = window
        minute = local.hour * 60 + local.minute
        if not (start <= minute < end if start < end else minute >= start or minute < end):
            return False
    return days is None or bool(days >> _opening_day(local, window).weekday() & 1)


def next_window_open(now_utc, tz, window, days=None):
    """The first UTC instant at or after `now_utc` when the client's local window is open (on one
    of `days`)."""
    if window is None and days is None:
        return now_utc
    if in_window(now_utc, tz, window, days):
        return now_utc
    zone = zoneinfo.ZoneInfo(tz)
    local = now_utc.replace(tzinfo=UTC).astimezone(zone)
    opens_at = window[0] if window is not None else 0
    for ahead in range(0, 9):
        day = local.date() + dt.timedelta(days=ahead)
        if days is not None and not days >> day.weekday() & 1:
            continue
        wall = dt.datetime(day.year, day.month, day.day, opens_at // 60, opens_at % 60)
        candidate = wall.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
        if candidate <= now_utc:
            continue
        if candidate.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None) != wall:
            # The opening wall time is skipped by a DST jump: the window opens when the clocks jump.
            return _first_open_after(now_utc, candidate, tz, window, days)
        return candidate
    raise AssertionError("a window opens within a week and a day")


def _first_open_after(lo, hi, tz, window, days=None):
    """Bisect to the minute between lo (closed) and hi for the first open instant."""
    while (hi - lo) > dt.timedelta(minutes=1):
        mid = lo + (hi - lo) / 2
        if in_window(mid, tz, window, days):
            hi = mid
        else:
            lo = mid
    hi = hi.replace(second=0, microsecond=0)
    return hi if in_window(hi, tz, window, days) else hi + dt.timedelta(minutes=1)


def window_close(open_utc, tz, window, days=None):
    """The close of the opening `open_utc` is in (an instant the window is open, such as
    next_window_open gives): the first instant after it at which the window is shut. A window across
    midnight closes the next day; days without a window close at the first local midnight of a day
    not among them (consecutive days are one opening); a DST jump over the closing time closes it
    when the clocks jump, and a closing time the clocks repeat closes it the first time. None: it
    never closes (no window and every day)."""
    zone = zoneinfo.ZoneInfo(tz)
    local = open_utc.replace(tzinfo=UTC).astimezone(zone)
    day = _opening_day(local, window)
    if window is not None:
        close_day = day + dt.timedelta(days=1) if window[0] > window[1] else day
        wall = dt.datetime(close_day.year, close_day.month, close_day.day, window[1] // 60, window[1] % 60)
    else:
        if days is None or days & EVERY_DAY == EVERY_DAY:
            return None
        close_day = day + dt.timedelta(days=1)
        while days >> close_day.weekday() & 1:
            close_day += dt.timedelta(days=1)
        wall = dt.datetime(close_day.year, close_day.month, close_day.day)
    close = local_to_utc(wall, zone)
    if close <= open_utc:
        # The opening is in the second pass of an hour the clocks repeat: the close is its second pass.
        close = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(tzinfo=None)
    return close
