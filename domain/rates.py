"""Throughput caps: how fast every consumer together may put messages on the wire.

`MAILER_RATE` caps the whole service, `MAILER_RATE_OPERATOR` each operator code named (a client's
operator), both per second, counted in messages or, with `MAILER_RATE_UNIT=segments`, in billed SMS
parts. The consumers share one token bucket per cap in the database (engine.pacing), so the cap holds
however many consumers run and wherever they run. The arithmetic here is shared by that bucket, the
editor's warning and the dashboard's expected finish.
"""
import dataclasses
import datetime as dt
import math
import re

MESSAGES, SEGMENTS = "messages", "segments"
RATE_UNITS = (MESSAGES, SEGMENTS)

# A bucket holds at most this many seconds of its rate (and at least one token): a consumer that
# waited may send that much at once, never more. Smaller is smoother but spills tokens whenever a
# loaded machine makes the consumers late: a twentieth fell 8% short of the cap, a tenth keeps it
# within 1% over a minute, and a gateway counting any sliding second saw up to 58 under a cap of 50
# (a fifth: 60-66).
BURST_SECONDS = 0.1

TOTAL = "all"  # the key of the bucket of MAILER_RATE


def operator_key(operator):
    """The key of an operator's bucket."""
    return f"operator {operator}"


def parse_rate(text):
    """A rate per second: '50', '12.5' or '50/s'."""
    value = text.strip()
    if value.endswith("/s"):
        value = value[:-2].strip()
    if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,6})?", value):
        raise ValueError(f"must be a number of messages per second such as 50, in the digits 0-9 "
                         f"(got {text.strip()!r})")
    rate = float(value)
    if rate <= 0:
        raise ValueError("must be more than 0 (leave it unset for no cap)")
    return rate


def parse_operator_rates(text):
    """'900=20,916=10' -> {'900': 20.0, '916': 10.0}."""
    rates = {}
    for item in text.split(","):
        if not item.strip():
            continue
        operator, sep, rate = item.partition("=")
        operator = operator.strip()
        if not sep or not re.fullmatch(r"[0-9]{3}", operator):
            raise ValueError(f"must be operator=rate pairs such as 900=20,916=10 (got {item.strip()!r})")
        if operator in rates:
            raise ValueError(f"must name each operator once ({operator} is named twice)")
        try:
            rates[operator] = parse_rate(rate)
        except ValueError as exc:
            raise ValueError(f"must give each operator a rate such as 900=20 (operator {operator}: {exc})") from None
    return rates


def _rate_text(rate):
    return f"{rate:g}"


@dataclasses.dataclass(frozen=True)
class Caps:
    """The caps in force: `total` per second over everything (None: none), `operators` per operator
    code, counted in `unit`."""
    total: float | None = None
    operators: dict = dataclasses.field(default_factory=dict)
    unit: str = MESSAGES

    @classmethod
    def of(cls, settings):
        return cls(settings.rate, dict(settings.rate_operators or {}), settings.rate_unit)

    def __bool__(self):
        return self.total is not None or bool(self.operators)

    def cost(self, parts):
        """What one message of `parts` SMS parts takes from a bucket."""
        return max(1, parts) if self.unit == SEGMENTS else 1

    def describe(self):
        """'50 messages/s in all; operator 900: 20/s, 916: 10/s', or 'no cap'."""
        if not self:
            return "no cap"
        said = []
        if self.total is not None:
            said.append(f"{_rate_text(self.total)} {self.unit}/s in all")
        if self.operators:
            said.append("operator " + ", ".join(f"{op}: {_rate_text(r)}/s" for op, r in sorted(self.operators.items())))
        return "; ".join(said)

    def seconds_for(self, by_operator, parts=1):
        """How long the caps take to let an audience through: by_operator {code: messages}; None when
        nothing caps it. The total cap and each operator's cap are each a floor; the slowest wins
        (other mailings sharing the caps make it longer)."""
        cost = self.cost(parts)
        floors = []
        if self.total is not None:
            floors.append(sum(by_operator.values()) * cost / self.total)
        for operator, n in by_operator.items():
            if operator in self.operators and n:
                floors.append(n * cost / self.operators[operator])
        return max(floors) if floors else None


def capacity(rate):
    """The most tokens a bucket of `rate` per second holds."""
    return max(1.0, rate * BURST_SECONDS)


def refill(tokens, at, rate, now):
    """The tokens in a bucket at `now` (seconds) that had `tokens` at `at`."""
    return min(capacity(rate), tokens + max(0.0, now - at) * rate)


def wait_for_token(tokens, rate):
    """Seconds until a bucket holding `tokens` has one whole token."""
    return 0.0 if tokens >= 1 else (1 - tokens) / rate


def expected_finish(now, pending, per_second):
    """When `pending` messages are through at `per_second` (None: unknown)."""
    if pending <= 0:
        return now
    if not per_second or per_second <= 0 or not math.isfinite(per_second):
        return None
    return now + dt.timedelta(seconds=pending / per_second)


@dataclasses.dataclass(frozen=True)
class Shortfall:
    """What the caps leave out of an audience between a start and an end: the cap that binds (the
    total's, or one operator's), how long it needs for what it caps, the time there is, and about how
    many recipients would not go before the end."""
    needed: float  # seconds the binding cap takes
    there: float  # seconds between the start and the end
    missed: int  # recipients that would not go (about)
    audience: int  # every recipient
    rate: float  # the binding cap, per second
    unit: str
    parts: int  # SMS parts per message (what a message costs with unit=segments)
    operator: str | None = None  # the operator whose cap binds; None: the total's
    capped: int = 0  # the recipients that cap holds back: the operator's, or the whole audience
    windowed: bool = False  # the mailing sends only in a window (or on some days): not counted here

    def text(self):
        """'at the cap of 50 messages/s the 20,000 recipients need 6 min 40 s; the mailing has 5 min:
        about 5,000 would not go'; naming the operator when its cap is the one that binds ('at
        operator 900's cap of 20 messages/s its 12,000 recipients need 10 min; the mailing has 5 min:
        about 6,000 of the 20,000 recipients would not go')."""
        each = f" ({self.parts} parts each)" if self.unit == SEGMENTS and self.parts > 1 else ""
        if self.operator is None:
            cap = f"at the cap of {_rate_text(self.rate)} {self.unit}/s the {self.capped:,} recipients{each}"
        else:
            cap = (f"at operator {self.operator}'s cap of {_rate_text(self.rate)} {self.unit}/s its "
                   f"{self.capped:,} recipients{each}")
        # (the total cap may hold back others too: the figure is of the whole audience)
        of = f" of the {self.audience:,} recipients" if self.capped != self.audience else ""
        return (f"{cap} need {duration_text(self.needed)}; the mailing has {duration_text(self.there)}: "
                f"about {self.missed:,}{of} would not go"
                + (" (not counting its window, which leaves it less time)" if self.windowed else ""))

    def as_dict(self):
        return {"needed_seconds": round(self.needed, 1), "seconds": round(self.there, 1),
                "would_not_go": self.missed, "recipients": self.audience, "cap": self.rate,
                "unit": self.unit, "operator": self.operator, "window_not_counted": self.windowed,
                "text": self.text()}


def limit(start, end, by_operator, caps, parts=1, windowed=False):
    """The Shortfall of an audience ({operator code: recipients}) between start and end under `caps`,
    or None when nothing caps it or it all fits. The recipients through by the end are those each
    operator's cap lets through (all of an uncapped operator's), at most what the total cap lets
    through: a bottleneck at one operator holds back only that operator's recipients."""
    cost = caps.cost(parts)
    floors = []  # (seconds, operator or None, recipients it caps, rate)
    audience = sum(by_operator.values())
    if caps.total is not None and audience:
        floors.append((audience * cost / caps.total, None, audience, caps.total))
    for operator, n in sorted(by_operator.items(), key=lambda item: str(item[0])):
        if operator in caps.operators and n:
            floors.append((n * cost / caps.operators[operator], operator, n, caps.operators[operator]))
    there = max(0.0, (end - start).total_seconds())
    if not floors or max(f[0] for f in floors) <= there:
        return None
    needed, operator, capped, rate = max(floors, key=lambda f: f[0])
    through = sum(min(n, caps.operators[op] * there / cost) if op in caps.operators else n
                  for op, n in by_operator.items())
    if caps.total is not None:
        through = min(through, caps.total * there / cost)
    return Shortfall(needed, there, audience - int(through), audience, rate, caps.unit, parts,
                     operator, capped, windowed)


def shortfall(start, end, by_operator, caps, parts=1):
    """What the caps mean for an audience between start and end: (seconds needed, seconds there are,
    how many would not go), or None when nothing caps it or it fits (see `limit`)."""
    found = limit(start, end, by_operator, caps, parts)
    return None if found is None else (found.needed, found.there, found.missed)


def duration_text(seconds):
    """'2 h 05 min', '4 min 10 s', '5 min', '12 s'."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min" + (f" {seconds % 60:02d} s" if seconds % 60 else "")
    return f"{seconds} s"
