"""Storage and rules of the mailing service: clients, mailings, messages and the send journal.

Every datetime in the database is naive UTC. Everything here is set-based: audiences are materialized
with one INSERT ... SELECT, messages are claimed and settled in batches. Nothing here imports textual
or huey: the console and the tasks call this module.
"""
import csv
import datetime as dt
import functools
import os
import re
import unicodedata
import warnings
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import peewee as pw
import pendulum
from playhouse.db_url import connect

UTC = dt.timezone.utc
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

PENDING, SENT, FAILED, EXPIRED, CANCELLED, UNKNOWN = (
    "pending", "sent", "failed", "expired", "cancelled", "unknown")
MESSAGE_STATUSES = (PENDING, SENT, FAILED, EXPIRED, CANCELLED, UNKNOWN)
FINAL_STATUSES = (SENT, FAILED, EXPIRED, CANCELLED, UNKNOWN)

# How a status is said to an operator: `unknown` is an attempt in doubt (it may have reached the phone).
STATUS_LABELS = {UNKNOWN: "in doubt"}


def status_label(status):
    return STATUS_LABELS.get(status, status)


SCHEDULED, RUNNING, PAUSED, FINISHED = "scheduled", "running", "paused", "finished"
MAILING_STATES = (SCHEDULED, RUNNING, PAUSED, FINISHED, CANCELLED)

MAX_TEXT = 1000
MAX_TAG = 64
CSV_HEADER = ("phone", "operator", "tag", "tz")


def utcnow():
    """Naive UTC now: the only kind of datetime the database holds."""
    return dt.datetime.now(UTC).replace(tzinfo=None)


def db_now():
    """Now by the database's clock where it has one of its own (PostgreSQL: the server's, shared by
    every consumer and command); SQLite lives in this process, whose clock is the only one there is.
    Starts, ends and the last check before the wire are judged by it."""
    if db.obj is not None and not isinstance(db.obj, pw.SqliteDatabase):
        value = db.execute_sql("SELECT clock_timestamp() AT TIME ZONE 'UTC'").fetchone()[0]
        return to_naive_utc(value)
    return utcnow()


def to_naive_utc(value):
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # pendulum.DateTime is refused by the sqlite driver: store a plain datetime.
    return dt.datetime(value.year, value.month, value.day, value.hour, value.minute,
                       value.second, value.microsecond)


class UTCDateTimeField(pw.DateTimeField):
    def db_value(self, value):
        return super().db_value(to_naive_utc(value))


# ---------------------------------------------------------------------------------------------------
# Configuration: everything comes from the environment so other engines need no code change.

def env_database_url():
    return os.environ.get("MAILER_DB_URL", "sqlite:///data/mailer.db")


def sqlite_path(url):
    """File path of a sqlite URL (sqlite:///rel/path or sqlite:////abs/path), else None."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    return None


def operator_zone():
    """The operator's zone: MAILER_TZ, else the machine's, else UTC."""
    name = os.environ.get("MAILER_TZ")
    if name:
        return validate_tz(name)
    try:
        name = pendulum.local_timezone().name
        return name if name in known_zones() else "UTC"
    except Exception:
        return "UTC"


# ---------------------------------------------------------------------------------------------------
# Schema

db = pw.DatabaseProxy()


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False


class Client(BaseModel):
    phone = pw.CharField(max_length=11, unique=True)
    operator = pw.CharField(max_length=3, index=True)
    tag = pw.CharField(max_length=MAX_TAG, default="", index=True)
    tz = pw.CharField(max_length=64)
    created_at = UTCDateTimeField(default=utcnow)


class Mailing(BaseModel):
    text = pw.TextField()
    start_at = UTCDateTimeField()
    end_at = UTCDateTimeField()
    operator = pw.CharField(max_length=3, null=True)
    tag = pw.CharField(max_length=MAX_TAG, null=True)
    window_start = pw.IntegerField(null=True)  # minutes after local midnight
    window_end = pw.IntegerField(null=True)
    state = pw.CharField(default=SCHEDULED, index=True)
    state_reason = pw.TextField(default="")
    started_at = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField(default=utcnow)
    updated_at = UTCDateTimeField(default=utcnow)

    @property
    def window(self):
        if self.window_start is None:
            return None
        return format_window(self.window_start, self.window_end)


class Message(BaseModel):
    mailing = pw.ForeignKeyField(Mailing, backref="messages", on_delete="CASCADE", index=False)
    # No foreign key or index on the client: a message outlives its client, and an index ordered by
    # client would make every new audience touch the whole index (3x slower at a million clients).
    client_id = pw.IntegerField(null=True)
    phone = pw.CharField(max_length=11)
    text = pw.TextField(null=True)  # the text it was sent with
    status = pw.CharField(default=PENDING)
    created_at = UTCDateTimeField(default=utcnow)
    sent_at = UTCDateTimeField(null=True)
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")
    next_attempt_at = UTCDateTimeField(null=True)
    lease_owner = pw.CharField(null=True)
    lease_until = UTCDateTimeField(null=True)
    sending_since = UTCDateTimeField(null=True)  # set while a POST may be on the wire
    # An attempt may have reached the gateway without a valid answer: this message can no longer
    # be said to have expired unsent (migration 0004).
    in_doubt = pw.BooleanField(default=False)

    class Meta:
        # One message per (mailing, client); claims, statistics and expiry read (mailing, status, ...);
        # the lease index holds only the few messages out on lease.
        indexes = (
            (("mailing", "client_id"), True),
            (("mailing", "status", "next_attempt_at"), False),
        )


Message.add_index(Message.lease_owner, where=Message.lease_owner.is_null(False))


class Attempt(BaseModel):
    """The send journal: one row per attempt (or per decision about a message)."""
    message = pw.ForeignKeyField(Message, backref="attempt_rows", on_delete="CASCADE")
    mailing_id = pw.IntegerField(index=True)
    client_id = pw.IntegerField(null=True, index=True)
    at = UTCDateTimeField(default=utcnow, index=True)
    outcome = pw.CharField()  # sent, retry, failed, expired, cancelled, unknown
    http_status = pw.IntegerField(null=True)
    latency_ms = pw.FloatField(null=True)
    error = pw.TextField(default="")
    owner = pw.CharField(null=True)  # the consumer that made it (Heartbeat.owner); migration 0003


class Heartbeat(BaseModel):
    """One row per live consumer, rewritten every few seconds. Others judge it alive by seeing `seq`
    move, never by comparing `beat_at` (its clock) with theirs; `node` names the kernel and PID
    namespace, so that `pid` is only checked by a process that shares them (migration 0004)."""
    owner = pw.CharField(unique=True)
    host = pw.CharField()
    pid = pw.IntegerField()
    seq = pw.IntegerField(default=0)
    node = pw.CharField(default="")
    proc_start = pw.BigIntegerField(null=True)
    gateway = pw.CharField(default="")
    started_at = UTCDateTimeField(default=utcnow)
    beat_at = UTCDateTimeField(default=utcnow)


class GatewayStatus(BaseModel):
    """Why sending is paused for every mailing (an expired token), and until when."""
    name = pw.CharField(primary_key=True)
    paused_until = UTCDateTimeField(null=True)
    reason = pw.TextField(default="")
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "gateway_status"


MODELS = (Client, Mailing, Message, Attempt, Heartbeat, GatewayStatus)
GATEWAY = "probe"


def gateway_pause(now=None):
    """(paused_until, reason) while sending is paused for everyone, else None."""
    now = now or utcnow()
    row = GatewayStatus.get_or_none(GatewayStatus.name == GATEWAY)
    if row is None or row.paused_until is None or row.paused_until <= now:
        return None
    return row.paused_until, row.reason


def set_gateway_pause(until, reason=""):
    (GatewayStatus.insert(name=GATEWAY, paused_until=until, reason=reason, updated_at=utcnow())
     .on_conflict(conflict_target=[GatewayStatus.name],
                  update={GatewayStatus.paused_until: until, GatewayStatus.reason: reason,
                          GatewayStatus.updated_at: utcnow()})
     .execute())


def open_database(url=None, migrate=True):
    """Connect the models to the database at `url` (default MAILER_DB_URL) and apply migrations."""
    url = url or env_database_url()
    path = sqlite_path(url)
    if path is not None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        timeout = float(os.environ.get("MAILER_DB_TIMEOUT", "30"))  # seconds to wait for a lock
        database = pw.SqliteDatabase(
            path, timeout=timeout, lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1,
                     "cache_size": -32000, "busy_timeout": int(timeout * 1000)})
    else:
        options = {}
        if is_postgres_url(url):
            try:
                import psycopg  # noqa: F401
                options["prefer_psycopg3"] = True  # psycopg 3 even when psycopg2 is installed too
            except ImportError:
                pass  # peewee falls back to psycopg2, or says that no driver was found
        database = connect(url, unquote_password=True, unquote_user=True, **options)
    db.initialize(database)
    if migrate:
        migrate_database(database)
    return database


def redact_url(url):
    """A database or queue URL fit to show: its password replaced by ***."""
    return re.sub(r"^([a-z0-9+.-]+://[^:/@]*:)[^@/]*@", r"\1***@", url, flags=re.I)


def is_postgres_url(url):
    return url.split(":", 1)[0] in ("postgres", "postgresql", "postgres+pool", "postgresql+pool")


MIGRATION_LOCK = 0x6D61696C6572  # any fixed number: the advisory lock every PostgreSQL migrator takes


def migrate_database(database):
    """Apply pending migrations. On PostgreSQL, processes starting together (several consumers) take
    turns under an advisory lock, so none applies a migration another is applying."""
    from playhouse.migrations import Runner
    if not isinstance(database, pw.PostgresqlDatabase):
        Runner(database, directory=str(MIGRATIONS_DIR)).up()
        return
    database.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        Runner(database, directory=str(MIGRATIONS_DIR)).up()
    finally:
        database.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


# ---------------------------------------------------------------------------------------------------
# Validation. Every error names the field it concerns so a screen can show it next to the field.

class ValidationError(ValueError):
    def __init__(self, errors):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# Digits are the ASCII 0-9 only, everywhere: Python's `\d` and str.isdigit() also take Arabic-Indic,
# full-width or superscript digits, and '٧٩٠٠١٢٣٤٥٦٧' would be a second client for 79001234567.
PHONE_RE = re.compile(r"7[0-9]{10}")
OPERATOR_RE = re.compile(r"[0-9]{3}")


def quote_value(value, limit=40):
    """repr(value) for an error message, cut short when it is long."""
    value = str(value)
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value)} characters)"


def foreign_digit_note(value):
    """'; only the digits 0-9 ...' naming the first non-ASCII digit of value, else ''."""
    c = next((c for c in value if c.isdigit() and not c.isascii()), None)
    return "" if c is None else f"; only the digits 0-9 are accepted, not {c!r} (U+{ord(c):04X})"


def _unreadable(value):
    """Why value cannot be stored: a lone surrogate (bytes that were not UTF-8, as argv delivers them)
    or a control character other than a newline (NUL, tab, escape sequences, C1 codes); else None."""
    for i, c in enumerate(value, 1):
        if "\ud800" <= c <= "\udfff":
            return f"is not valid UTF-8 (character {i})"
        if c != "\n" and unicodedata.category(c) == "Cc":
            return f"contains a control character U+{ord(c):04X} at position {i}"
    return None


def validate_phone(value):
    value = str(value).strip()
    if PHONE_RE.fullmatch(value):
        return value
    # The hint is written in ASCII digits whatever digits were typed.
    digits = "".join(c if c.isascii() else str(unicodedata.decimal(c))
                     for c in value if c.isdecimal())
    hint = ""
    if len(digits) == 11 and digits[0] in "78":
        hint = f" (did you mean 7{digits[1:]}?)"
    elif len(digits) == 10:
        hint = f" (did you mean 7{digits}?)"
    raise ValidationError({"phone": f"must be 7 followed by 10 digits, like 79001234567; "
                                    f"got {quote_value(value)}{hint}{foreign_digit_note(value)}"})


def validate_operator(value, field="operator"):
    value = str(value).strip()
    if not OPERATOR_RE.fullmatch(value):
        raise ValidationError({field: f"must be 3 digits, like 900; got {quote_value(value)}"
                                      f"{foreign_digit_note(value)}"})
    return value


def validate_tag(value, field="tag"):
    value = (value or "").strip()
    if len(value) > MAX_TAG:
        raise ValidationError({field: f"is {len(value)} characters; at most {MAX_TAG}"})
    why = _unreadable(value) or ("contains a newline" if "\n" in value else None)
    if why:
        raise ValidationError({field: f"{why}; a tag is one line of printable text"})
    return value


@functools.lru_cache(maxsize=1)
def known_zones():
    return frozenset(zoneinfo.available_timezones())


def validate_tz(value, field="tz"):
    value = (value or "").strip()
    if value not in known_zones():
        raise ValidationError({field: f"unknown time zone {value!r}; use an IANA name like "
                                      f"Europe/Moscow or UTC"})
    return value


def validate_text(value):
    """A message's text: newlines (CRLF read as LF) and printable characters only. A control
    character (NUL, tab, ESC of a terminal escape sequence, C1 codes like CSI U+009B) is refused, as
    are lone surrogates: what bytes that are not UTF-8 become in argv."""
    value = (value or "").replace("\r\n", "\n")
    why = _unreadable(value)
    if why:
        raise ValidationError({"text": why if why.startswith("is not")
                               else f"{why}; only newlines are allowed"})
    if not value.strip():
        raise ValidationError({"text": "must not be empty"})
    if len(value) > MAX_TEXT:
        raise ValidationError({"text": f"is {len(value)} characters; at most {MAX_TEXT}"})
    return value


WINDOW_RE = re.compile(r"([0-9]{1,2}):([0-9]{2})[ \t]*-[ \t]*([0-9]{1,2}):([0-9]{2})")


def parse_window(value):
    """'HH:MM-HH:MM' in the client's local time -> (start, end) minutes; None for no window."""
    if value is None or not str(value).strip():
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


# ---------------------------------------------------------------------------------------------------
# Local sending window arithmetic


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


# ---------------------------------------------------------------------------------------------------
# Clients


def clean_client(phone, operator=None, tag="", tz=None):
    """Validate one client's fields; returns a dict ready to insert. Collects every field's error."""
    errors, row = {}, {}
    for field, check in (("phone", lambda: validate_phone(phone)),
                         ("tag", lambda: validate_tag(tag)),
                         ("tz", lambda: validate_tz(tz) if tz else operator_zone())):
        try:
            row[field] = check()
        except ValidationError as exc:
            errors.update(exc.errors)
    if operator not in (None, ""):
        try:
            row["operator"] = validate_operator(operator)
        except ValidationError as exc:
            errors.update(exc.errors)
    elif "phone" in row:
        row["operator"] = row["phone"][1:4]
    if errors:
        raise ValidationError(errors)
    return row


def create_client(phone, operator=None, tag="", tz=None):
    row = clean_client(phone, operator, tag, tz)
    with db.atomic():
        if Client.select().where(Client.phone == row["phone"]).exists():
            raise ValidationError({"phone": f"{row['phone']} is already a client"})
        client = Client.create(**row)
        attach_new_clients(Client.id == client.id)
    return client


def edit_client(client_id, **changes):
    client = get_client(client_id)
    merged = {"phone": client.phone, "operator": client.operator, "tag": client.tag, "tz": client.tz}
    merged.update({k: v for k, v in changes.items() if v is not None})
    if "phone" in changes and "operator" not in changes and changes["phone"] is not None:
        merged["operator"] = None  # follow the new phone's code
    row = clean_client(**merged)
    with db.atomic():
        clash = Client.select().where((Client.phone == row["phone"]) & (Client.id != client.id))
        if clash.exists():
            raise ValidationError({"phone": f"{row['phone']} is already a client"})
        Client.update(**row).where(Client.id == client.id).execute()
        # Unsent messages follow the client's new phone.
        (Message.update(phone=row["phone"])
         .where((Message.client_id == client.id) & (Message.status == PENDING)
                & Message.sending_since.is_null()).execute())
        attach_new_clients(Client.id == client.id)
    return get_client(client_id)


def get_client(client_id):
    client = Client.get_or_none(Client.id == client_id)
    if client is None:
        raise ValidationError({"id": f"no client with id {client_id}"})
    return client


def delete_clients(ids):
    """Delete clients. Their messages stay with the phone they were sent to; unsent ones are
    cancelled so nobody deleted is messaged."""
    ids = list(ids)
    with db.atomic():
        missing = set(ids) - {c.id for c in Client.select(Client.id).where(Client.id.in_(ids))}
        if missing:
            raise ValidationError({"id": f"no client with id {', '.join(map(str, sorted(missing)))}"})
        (Message.update(status=unsent_status(CANCELLED), last_error="client deleted",
                        lease_owner=None, lease_until=None)
         .where(Message.client_id.in_(ids) & (Message.status == PENDING)
                & Message.sending_since.is_null()).execute())
        # One pass over the messages (there is no index by client): they keep their phone.
        Message.update(client_id=None).where(Message.client_id.in_(ids)).execute()
        return Client.delete().where(Client.id.in_(ids)).execute()


def client_query(search=""):
    """Clients matching a free-text filter on phone, operator, tag or zone, newest first."""
    query = Client.select().order_by(Client.id.desc())
    search = (search or "").strip()
    if search:
        cond = Client.phone.contains(search) | Client.tag.contains(search) | Client.tz.contains(search)
        if re.fullmatch(r"\d{3}", search):
            cond |= Client.operator == search
        query = query.where(cond)
    return query


@dataclass
class ImportReport:
    imported: int
    rejected: list  # (line number, raw line, reason)
    total: int

    def as_dict(self):
        return {"imported": self.imported, "total": self.total,
                "rejected": [{"line": n, "row": raw, "error": why} for n, raw, why in self.rejected]}


IMPORT_BATCH = 50_000


def import_clients(source, all_or_nothing=False):
    """Import a CSV (header phone,operator,tag,tz). Good rows go in, each bad row is reported with its
    line number; with all_or_nothing a single bad row imports nothing."""
    if isinstance(source, (str, Path)):
        try:
            fh = open(source, newline="", encoding="utf-8-sig")
        except IsADirectoryError:
            raise ValidationError({"file": f"is a directory: {source}"}) from None
        except OSError as exc:  # missing, unreadable: the reason the system gives
            raise ValidationError({"file": f"{exc.strerror or exc}: {source}"}) from None
        with fh:
            try:
                return import_clients(fh, all_or_nothing)
            except UnicodeDecodeError as exc:
                # Rows go in only after the whole file is read: nothing was imported.
                raise ValidationError({"file": _not_utf8(source, exc)}) from None
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        raise ValidationError({"file": "is empty; expected a header line phone,operator,tag,tz"})
    header = [h.strip().lower() for h in header]
    if "phone" not in header or not set(header) <= set(CSV_HEADER):
        raise ValidationError({"file": f"header must be phone,operator,tag,tz; got {','.join(header)}"})
    col = {name: header.index(name) for name in header}
    i_phone, i_operator, i_tag, i_tz = (col.get(name) for name in CSV_HEADER)
    width = len(header)
    default_tz = operator_zone()
    zones = known_zones()
    phone_ok = PHONE_RE.fullmatch
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    rejected, rows, seen = [], [], {}
    total = 0
    # The loop is the import's hot path (a million rows): plain locals, no per-row helpers.
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a stray quote or carriage return: this row only
            total += 1
            rejected.append((reader.line_num, "", f"cannot be read as CSV: {exc}"))
            continue
        if not fields or not any(fields) or not "".join(fields).strip():
            continue
        total += 1
        line_no = reader.line_num
        if len(fields) != width:
            rejected.append((line_no, ",".join(fields), f"has {len(fields)} fields, expected {width}"))
            continue
        phone = fields[i_phone].strip()
        operator = fields[i_operator].strip() if i_operator is not None else ""
        tag = fields[i_tag].strip() if i_tag is not None else ""
        tz = fields[i_tz].strip() if i_tz is not None else ""
        # Fast path for well-formed rows; the full validator explains the others.
        # (isdigit() alone takes '²' or '٩': isascii() keeps the fast path to the digits 0-9.)
        if (phone_ok(phone) and (not operator or (len(operator) == 3 and operator.isascii()
                                                   and operator.isdigit()))
                and len(tag) <= MAX_TAG and (not tz or tz in zones) and tag.isprintable()):
            row = (phone, operator or phone[1:4], tag, tz or default_tz, now)
        else:
            try:
                c = clean_client(phone, operator, tag, tz or default_tz)
            except ValidationError as exc:
                rejected.append((line_no, ",".join(fields), str(exc)))
                continue
            row = (c["phone"], c["operator"], c["tag"], c["tz"], now)
        first = seen.setdefault(row[0], line_no)
        if first != line_no:
            rejected.append((line_no, ",".join(fields), f"phone: {row[0]} repeats line {first}"))
            continue
        rows.append(row)
    existing = _existing_phones([row[0] for row in rows])
    if existing:
        rejected.extend((seen[row[0]], ",".join(row[:4]), f"phone: {row[0]} is already a client")
                        for row in rows if row[0] in existing)
        rows = [row for row in rows if row[0] not in existing]
    rejected.sort()
    if all_or_nothing and rejected:
        return ImportReport(0, rejected, total)
    # In phone order the unique phone index grows at its end instead of splitting pages at random.
    rows.sort()
    with db.atomic():
        before = Client.select(pw.fn.MAX(Client.id)).scalar() or 0
        sql = (f"INSERT INTO client (phone, operator, tag, tz, created_at) "
               f"VALUES ({db.param}, {db.param}, {db.param}, {db.param}, {db.param})")
        cursor = db.cursor()
        for i in range(0, len(rows), IMPORT_BATCH):
            cursor.executemany(sql, rows[i:i + IMPORT_BATCH])
        attach_new_clients(Client.id > before)
    return ImportReport(len(rows), rejected, total)


def _not_utf8(path, exc):
    """Why a CSV file is refused when it is not UTF-8 (Latin-1, Windows-1251...): where its first bad
    byte is, found again line by line (no UTF-8 sequence spans a newline)."""
    offset = 0
    try:
        with open(path, "rb") as raw:
            for line_no, line in enumerate(raw, 1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as found:
                    return (f"is not UTF-8 text (byte {offset + found.start + 1} of the file, "
                            f"0x{line[found.start]:02X}, on line {line_no}); save it as UTF-8 and "
                            f"import it again")
                offset += len(line)
    except OSError:
        pass
    return f"is not UTF-8 text ({exc.reason}); save it as UTF-8 and import it again"


def _existing_phones(phones):
    """Which of these phones are clients already (raw SQL: this runs for every imported row)."""
    if not phones or not Client.select().exists():
        return set()
    found = set()
    for i in range(0, len(phones), 500):
        chunk = phones[i:i + 500]
        sql = f"SELECT phone FROM client WHERE phone IN ({', '.join([db.param] * len(chunk))})"
        found.update(p for (p,) in db.execute_sql(sql, chunk).fetchall())
    return found


def export_clients(out):
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    query = Client.select(Client.phone, Client.operator, Client.tag, Client.tz).order_by(Client.id)
    for row in query.tuples().iterator():
        writer.writerow(row)


# ---------------------------------------------------------------------------------------------------
# Mailings


def audience_filter(operator=None, tag=None):
    cond = pw.SQL("1 = 1")
    if operator:
        cond &= Client.operator == operator
    if tag:
        cond &= Client.tag == tag
    return cond


def audience_count(operator=None, tag=None):
    return Client.select().where(audience_filter(operator or None, tag or None)).count()


def filter_values():
    """The operator codes and tags that exist, for pickers and for checking filters."""
    operators = [o for (o,) in Client.select(Client.operator).distinct().order_by(Client.operator).tuples()]
    tags = [t for (t,) in Client.select(Client.tag).where(Client.tag != "").distinct()
            .order_by(Client.tag).tuples()]
    return operators, tags


def clean_mailing(text, start, end, operator=None, tag=None, window=None, now=None, tz=None,
                  require_future_end=True):
    """Validate a mailing's fields (times as operator strings or datetimes) -> dict of columns."""
    now = now or utcnow()
    errors, row = {}, {}

    def check(field, fn):
        try:
            row[field] = fn()
        except ValidationError as exc:
            errors.update(exc.errors)

    check("text", lambda: validate_text(text))
    check("start_at", lambda: to_naive_utc(start) if isinstance(start, dt.datetime)
          else parse_when(start, "start", tz, now))
    check("end_at", lambda: to_naive_utc(end) if isinstance(end, dt.datetime)
          else parse_when(end, "end", tz, now))
    check("operator", lambda: validate_operator(operator, "operator") if operator else None)
    check("tag", lambda: validate_tag(tag, "tag") or None)
    check("window", lambda: parse_window(window))
    if "start_at" in row and "end_at" in row:
        if row["end_at"] <= row["start_at"]:
            errors["end"] = "must be after the start"
        elif require_future_end and row["end_at"] <= now:
            errors["end"] = "is in the past"
    for field, column in (("operator", Client.operator), ("tag", Client.tag)):
        value = row.get(field)
        if value and not Client.select().where(column == value).exists():
            known = [v for (v,) in Client.select(column).distinct().order_by(column).limit(8).tuples() if v]
            errors[field] = (f"no client has {field} {value!r}"
                             + (f"; known: {', '.join(known)}" if known else ""))
    if errors:
        raise ValidationError({"end" if k == "end_at" else "start" if k == "start_at" else k: v
                               for k, v in errors.items()})
    window_cols = row.pop("window")
    row["window_start"], row["window_end"] = window_cols or (None, None)
    return row


def create_mailing(text, start, end, operator=None, tag=None, window=None, tz=None):
    """Create a mailing; if it is due it starts at once (audience materialized here)."""
    row = clean_mailing(text, start, end, operator, tag, window, tz=tz)
    mailing = Mailing.create(**row)
    start_if_due(mailing.id)
    return get_mailing(mailing.id)


def get_mailing(mailing_id, lock=False):
    mailing = (locked_mailings(Mailing.id == mailing_id) if lock
               else Mailing.select().where(Mailing.id == mailing_id)).first()
    if mailing is None:
        raise ValidationError({"id": f"no mailing with id {mailing_id}"})
    return mailing


def locked_mailings(cond):
    """Mailings whose rows, read inside a transaction, stay locked until it ends on an engine with row
    locks (PostgreSQL), so consumers changing a mailing's state take turns. SQLite's write
    transactions (BEGIN IMMEDIATE) already run one at a time."""
    query = Mailing.select().where(cond)
    return query.for_update() if db.for_update else query


EDITABLE_WHILE_RUNNING = {"text", "end"}


def edit_mailing(mailing_id, text=None, start=None, end=None, operator=None, tag=None, window=None,
                 tz=None):
    """A scheduled mailing can change anything; a running or paused one its text and end (for what
    is still unsent). Pass "" to clear the filter or the window."""
    mailing = get_mailing(mailing_id)
    given = {k for k, v in dict(text=text, start=start, end=end, operator=operator, tag=tag,
                                window=window).items() if v is not None}
    if mailing.state in (FINISHED, CANCELLED):
        raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}; it cannot change"})
    if mailing.state != SCHEDULED and given - EDITABLE_WHILE_RUNNING:
        raise ValidationError({sorted(given - EDITABLE_WHILE_RUNNING)[0]:
                               f"mailing {mailing.id} is {mailing.state}: only its text and end can change"})
    row = clean_mailing(
        text if text is not None else mailing.text,
        start if start is not None else mailing.start_at,
        end if end is not None else mailing.end_at,
        operator if operator is not None else mailing.operator,
        tag if tag is not None else mailing.tag,
        window if window is not None else mailing.window, tz=tz)
    if mailing.state != SCHEDULED:
        row = {"text": row["text"], "end_at": row["end_at"]}
    row["updated_at"] = utcnow()
    Mailing.update(**row).where(Mailing.id == mailing.id).execute()
    start_if_due(mailing.id)
    return get_mailing(mailing.id)


def start_if_due(mailing_id, now=None):
    """Materialize the audience of a scheduled mailing whose start has come. Idempotent."""
    now = now or db_now()
    with db.atomic():
        mailing = locked_mailings(Mailing.id == mailing_id).get()
        if mailing.state != SCHEDULED or mailing.start_at > now:
            return False
        if mailing.end_at <= now:
            Mailing.update(state=FINISHED, state_reason="ended before it could start",
                           updated_at=now).where(Mailing.id == mailing_id).execute()
            return False
        materialize(mailing, now)
        Mailing.update(state=RUNNING, started_at=now, updated_at=now).where(
            Mailing.id == mailing_id).execute()
    return True


def materialize(mailing, now, client_cond=None):
    """One pending message per matching client, in one INSERT ... SELECT (duplicates ignored)."""
    cond = audience_filter(mailing.operator, mailing.tag)
    if client_cond is not None:
        cond &= client_cond
    now = to_naive_utc(now)
    # In client id order: the (mailing, client) index then grows at its end. Unordered, SQLite reads
    # the phone index (it covers id and phone) and scatters the inserts: twice as slow.
    select = (Client.select(pw.Value(mailing.id), Client.id, Client.phone, pw.Value(PENDING),
                            pw.Value(now), pw.Value(now), pw.Value(0), pw.Value(""))
              .where(cond).order_by(Client.id))
    columns = [Message.mailing, Message.client_id, Message.phone, Message.status, Message.created_at,
               Message.next_attempt_at, Message.attempts, Message.last_error]
    return Message.insert_from(select, columns).on_conflict_ignore().as_rowcount().execute()


def attach_new_clients(client_cond, now=None):
    """Give clients just added or changed the message of every running or paused mailing they match."""
    now = now or utcnow()
    live = Mailing.select().where(Mailing.state.in_([RUNNING, PAUSED]) & (Mailing.end_at > now))
    return sum(materialize(mailing, now, client_cond) for mailing in live)


def set_state(mailing_id, action, reason=""):
    """pause, resume or cancel a mailing."""
    now = utcnow()
    allowed = {"pause": ((RUNNING,), PAUSED), "resume": ((PAUSED,), RUNNING),
               "cancel": ((SCHEDULED, RUNNING, PAUSED), CANCELLED)}
    sources, target = allowed[action]
    with db.atomic():
        mailing = get_mailing(mailing_id, lock=True)
        if mailing.state not in sources:
            raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}; cannot {action} it"})
        Mailing.update(state=target, state_reason=reason, updated_at=now).where(
            Mailing.id == mailing_id).execute()
        if target == CANCELLED:
            (Message.update(status=unsent_status(CANCELLED), last_error="mailing cancelled",
                            lease_owner=None, lease_until=None)
             .where((Message.mailing == mailing_id) & (Message.status == PENDING)
                    & Message.sending_since.is_null()).execute())
    return get_mailing(mailing_id)


def finish_if_ended(mailing_id, now=None):
    """At the end, whatever is unsent and not on the wire expires and the mailing finishes."""
    now = now or db_now()
    with db.atomic():
        mailing = locked_mailings(Mailing.id == mailing_id).get()
        if mailing.state not in (SCHEDULED, RUNNING, PAUSED) or mailing.end_at > now:
            return False
        expire_unsent(mailing_id, now)
        Mailing.update(state=FINISHED, updated_at=now).where(Mailing.id == mailing_id).execute()
    return True


def unsent_status(status):
    """The final status of a message that will not be sent again: `status` (expired, cancelled), or
    `unknown` where an earlier attempt may have reached the gateway."""
    return pw.Case(None, ((Message.in_doubt == True, UNKNOWN),), status)  # noqa: E712


def expire_unsent(mailing_id, now):
    return (Message.update(status=unsent_status(EXPIRED), last_error="mailing ended before it was sent",
                           lease_owner=None, lease_until=None)
            .where((Message.mailing == mailing_id) & (Message.status == PENDING)
                   & Message.sending_since.is_null())
            .execute())


def resend_in_doubt(mailing_id, now=None):
    """Put a mailing's in-doubt (`unknown`) messages back to be sent, with the same msgId: the
    operator's call, since each may already have reached the phone. Only while the mailing can
    still send; returns how many."""
    now = now or utcnow()
    with db.atomic():
        mailing = get_mailing(mailing_id, lock=True)
        if mailing.state not in (RUNNING, PAUSED) or mailing.end_at <= now:
            raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}"
                                            + (" and has ended" if mailing.end_at <= now else "")
                                            + "; only a running or paused mailing can resend"})
        return (Message.update(status=PENDING, next_attempt_at=now, lease_owner=None, lease_until=None,
                               sending_since=None, last_error="resent by the operator after an "
                                                              "attempt in doubt")
                .where((Message.mailing == mailing_id) & (Message.status == UNKNOWN)).execute())


# ---------------------------------------------------------------------------------------------------
# Statistics


def mailing_stats(mailing_id=None):
    """Counts by status per mailing: {'id', 'state', 'started', 'total', <status>: n, ...}."""
    query = Mailing.select().order_by(Mailing.id)
    if mailing_id is not None:
        get_mailing(mailing_id)
        query = query.where(Mailing.id == mailing_id)
    mailings = list(query)
    counts = {}
    count_query = (Message.select(Message.mailing, Message.status, pw.fn.COUNT(pw.SQL("*")))
                   .group_by(Message.mailing, Message.status))
    if mailing_id is not None:
        count_query = count_query.where(Message.mailing == mailing_id)
    for mid, status, n in count_query.tuples():
        counts.setdefault(mid, {})[status] = n
    result = []
    for m in mailings:
        by_status = {s: counts.get(m.id, {}).get(s, 0) for s in MESSAGE_STATUSES}
        total = sum(by_status.values())
        result.append({
            "id": m.id, "state": m.state, "started": m.started_at is not None,
            "total": total if m.started_at else audience_count(m.operator, m.tag),
            "materialized": total, **by_status,
            "text": m.text, "operator": m.operator, "tag": m.tag, "window": m.window,
            "start": m.start_at.isoformat() + "Z", "end": m.end_at.isoformat() + "Z",
            "reason": m.state_reason,
        })
    return result


def message_query(mailing_id, status=None):
    # In the order of the (mailing, client) index: a page needs no sort of the whole mailing.
    query = (Message.select().where(Message.mailing == mailing_id)
             .order_by(Message.client_id, Message.id))
    if status:
        query = query.where(Message.status == status)
    return query


def message_as_dict(m):
    return {"id": m.id, "mailing": m.mailing_id, "client": m.client_id, "phone": m.phone,
            "status": m.status, "attempts": m.attempts, "last_error": m.last_error,
            "created_at": _iso(m.created_at), "sent_at": _iso(m.sent_at),
            "next_attempt_at": _iso(m.next_attempt_at), "text": m.text}


def mailing_as_dict(m):
    return {"id": m.id, "state": m.state, "text": m.text, "start": _iso(m.start_at),
            "end": _iso(m.end_at), "operator": m.operator, "tag": m.tag, "window": m.window,
            "reason": m.state_reason, "started_at": _iso(m.started_at)}


def client_as_dict(c):
    return {"id": c.id, "phone": c.phone, "operator": c.operator, "tag": c.tag, "tz": c.tz}


def _iso(value):
    return value.isoformat() + "Z" if value else None
