"""The schema: clients, mailings, messages, the send journal, heartbeats and the gateway pause; and
opening and migrating the database.

Every datetime in the database is naive UTC. The rules live in `domain`, the changes in `service`.
"""
import re
import time
from pathlib import Path

import peewee as pw
from playhouse.db_url import connect

from domain import settings as _settings
from domain.times import to_naive_utc, utcnow
from domain.validation import MAX_TAG, ValidationError
from domain.vocabulary import PENDING, SCHEDULED
from domain.windows import format_days, format_window

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def db_now():
    """Now by the database's clock where it has one of its own (PostgreSQL: the server's, shared by
    every consumer and command); SQLite lives in this process, whose clock is the only one there is.
    Starts, ends and the last check before the wire are judged by it."""
    if db.obj is not None and not isinstance(db.obj, pw.SqliteDatabase):
        value = db.execute_sql("SELECT clock_timestamp() AT TIME ZONE 'UTC'").fetchone()[0]
        return to_naive_utc(value)
    return utcnow()


def shared_seconds():
    """Seconds by the one clock every process using this database shares, for the throughput caps'
    buckets (engine.pacing): PostgreSQL's server clock; on SQLite, whose processes share a machine,
    the kernel's boot clock, which never steps when the wall clock is set (nor under libfaketime
    with FAKETIME_DONT_FAKE_MONOTONIC). Only differences of it mean anything."""
    if db.obj is not None and not isinstance(db.obj, pw.SqliteDatabase):
        return float(db.execute_sql("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class UTCDateTimeField(pw.DateTimeField):
    def db_value(self, value):
        return super().db_value(to_naive_utc(value))




def sqlite_path(url):
    """File path of a sqlite URL (sqlite:///rel/path or sqlite:////abs/path), else None."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    return None


# ---------------------------------------------------------------------------------------------------
# Schema

db = pw.DatabaseProxy()


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False


class Client(BaseModel):
    phone = pw.CharField(max_length=11, unique=True)
    operator = pw.CharField(max_length=3)
    tag = pw.CharField(max_length=MAX_TAG, default="", index=True)
    tz = pw.CharField(max_length=64)
    created_at = UTCDateTimeField(default=utcnow)
    # Personal texts (0013): the name and the free attributes ({"city": "Omsk"} as JSON text) a
    # mailing's text may name as {name} and {attr.city} (domain.templates).
    name = pw.TextField(default="", constraints=[pw.SQL("DEFAULT ''")])
    attrs = pw.TextField(default="{}", constraints=[pw.SQL("DEFAULT '{}'")])

    class Meta:
        # Audiences are counted by operator and tag together (migration 0005).
        indexes = ((("operator", "tag"), False),)


class ClientTag(BaseModel):
    """A client's tags, its first (`client.tag`) among them (migration 0012). Keyed by (client, tag)
    (WITHOUT ROWID on SQLite: the table is that key), with a (tag, client) index for the filters. No
    foreign key: deleting clients deletes their tags (domain.clients), and an import does not pay a
    lookup per tag."""
    client_id = pw.IntegerField()
    tag = pw.CharField(max_length=MAX_TAG)

    class Meta:
        table_name = "client_tags"
        primary_key = pw.CompositeKey("client_id", "tag")
        indexes = ((("tag", "client_id"), False),)


class Mailing(BaseModel):
    text = pw.TextField()
    start_at = UTCDateTimeField()
    end_at = UTCDateTimeField()
    operator = pw.CharField(max_length=3, null=True)
    tag = pw.CharField(max_length=MAX_TAG, null=True)
    window_start = pw.IntegerField(null=True)  # minutes after local midnight
    window_end = pw.IntegerField(null=True)
    days = pw.IntegerField(null=True)  # the weekdays it sends on, bit 0 Monday; None: every day (0008)
    # Spread its messages evenly until its end (or its window's close) instead of sending at once (0010)
    spread = pw.BooleanField(default=False)
    # A clone's original, and for a resend the statuses of the original's messages whose clients it
    # reaches ('failed,expired'; None: the filter's audience, as any mailing's); when a mailing that
    # had started was archived (hidden from lists, kept for statistics) (0011)
    source_id = pw.IntegerField(null=True)
    source_statuses = pw.CharField(null=True)
    archived_at = UTCDateTimeField(null=True)
    # Its filter as JSON (domain.audience.Filter: operators, tags any/all/none of, skip_recent); None
    # for one saved before (0012), whose `operator` and `tag` say it. Those two columns still hold a
    # filter's one operator and one tag (any of), when it names exactly one.
    audience = pw.TextField(null=True)
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

    @property
    def weekdays(self):
        """'mon-fri', or None for every day."""
        return format_days(self.days)

    @property
    def audience_filter(self):
        """Its audience filter (domain.audience.Filter); not `filter`, peewee's Model.filter."""
        from domain.audience import Filter
        return Filter.of_mailing(self)

    @property
    def source(self):
        """(original's id, (statuses, ...)) of a resend, whose audience is the clients of those of
        the original's messages; None for a mailing whose audience is its filter's."""
        if not self.source_statuses:
            return None
        return self.source_id, tuple(self.source_statuses.split(","))


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
    namespace, so that `pid` is only checked by a process that shares them (migration 0004). It
    also carries the gateway's health as this consumer's attempts find it (migration 0006)."""
    owner = pw.CharField(unique=True)
    host = pw.CharField()
    pid = pw.IntegerField()
    seq = pw.IntegerField(default=0)
    node = pw.CharField(default="")
    proc_start = pw.BigIntegerField(null=True)
    gateway = pw.CharField(default="")
    started_at = UTCDateTimeField(default=utcnow)
    beat_at = UTCDateTimeField(default=utcnow)
    # The gateway's health as this consumer's attempts found it (domain.stats.GatewayHealth), written
    # with each beat (migration 0006): the last attempt answered, since when attempts get no answer
    # (None: they do), the last that got none, and why.
    gateway_ok_at = UTCDateTimeField(null=True)
    gateway_failing_since = UTCDateTimeField(null=True)
    gateway_failed_at = UTCDateTimeField(null=True)
    gateway_error = pw.TextField(default="")

    @property
    def backend(self):
        """The gateway backend this consumer sends through (MAILER_GATEWAY): the first word of its
        description (each backend's describe() starts with its name); None before a first beat."""
        return self.gateway.split(" ", 1)[0] or None


class GatewayStatus(BaseModel):
    """Why sending is paused for every mailing (an expired token), and until when."""
    name = pw.CharField(primary_key=True)
    paused_until = UTCDateTimeField(null=True)
    reason = pw.TextField(default="")
    updated_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "gateway_status"


class OptOut(BaseModel):
    """A phone that refused mailings (the stop list). Keyed by the phone, not the client: deleting and
    importing a client again cannot bring the number back (migration 0007)."""
    phone = pw.CharField(max_length=11, primary_key=True)
    source = pw.CharField(default="cli")  # vocabulary.OPT_OUT_SOURCES
    reason = pw.TextField(default="")
    created_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "opt_out"


class TestSend(BaseModel):
    """A mailing's text sent now to one of the operator's numbers (migration 0009). Apart from the
    mailing's messages: its statistics leave it out. `outcome` is `sending` until the gateway's
    answer is written (a process that died between says so: in doubt)."""
    mailing_id = pw.IntegerField(index=True)
    phone = pw.CharField(max_length=11)
    text = pw.TextField()
    at = UTCDateTimeField(default=utcnow)
    outcome = pw.CharField(default="sending")
    http_status = pw.IntegerField(null=True)
    latency_ms = pw.FloatField(null=True)
    error = pw.TextField(default="")

    class Meta:
        table_name = "test_send"

    # Its msgId at the gateway: apart from every message's (a message id is a 32-bit serial).
    MSG_ID_BASE = 10 ** 12

    @property
    def msg_id(self):
        return self.MSG_ID_BASE + self.id


class RateBucket(BaseModel):
    """A throughput cap's token bucket, shared by every consumer (engine.pacing; migration 0010): the
    tokens it held at `at` (seconds by shared_seconds(): compare only with another reading of it) and
    the rate per second the consumer that last took from it applied."""
    key = pw.CharField(primary_key=True)  # domain.rates.TOTAL or operator_key(code)
    tokens = pw.DoubleField()
    at = pw.DoubleField()
    rate = pw.DoubleField()
    unit = pw.CharField()

    class Meta:
        table_name = "rate_bucket"


class ApiToken(BaseModel):
    """A token of the HTTP API (migration 0014): its SHA-256 only (domain.api_tokens), never the token."""
    name = pw.CharField(default="")
    scope = pw.CharField()  # domain.api_tokens.SCOPES
    hash = pw.CharField(max_length=64, unique=True)
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "api_token"


MODELS = (Client, ClientTag, Mailing, Message, Attempt, Heartbeat, GatewayStatus, OptOut, TestSend, RateBucket,
          ApiToken)
GATEWAY = "probe"  # the GatewayStatus row of the one gateway


def open_database(url=None, migrate=True, settings=None, read_only=False):
    """Connect the models to the database at `url` (default MAILER_DB_URL) and apply migrations.

    read_only: every connection refuses to write (SQLite's query_only, PostgreSQL's read-only
    transactions), and no migration is applied: one not applied yet is a ValidationError."""
    settings = settings or _settings.current()
    url = url or settings.db_url
    path = sqlite_path(url)
    if path is not None:
        if path != ":memory:" and not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        timeout = settings.db_timeout  # seconds to wait for a lock
        database = pw.SqliteDatabase(
            path, timeout=timeout, lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "synchronous": "normal", "foreign_keys": 1,
                     "cache_size": -32000, "busy_timeout": int(timeout * 1000),
                     **({"query_only": 1} if read_only else {})})
    else:
        options = {}
        if is_postgres_url(url):
            try:
                import psycopg  # noqa: F401
                options["prefer_psycopg3"] = True  # psycopg 3 even when psycopg2 is installed too
            except ImportError:
                pass  # peewee falls back to psycopg2, or says that no driver was found
        if read_only:
            options["options"] = "-c default_transaction_read_only=on"
        database = connect(url, unquote_password=True, unquote_user=True, **options)
    db.initialize(database)
    if read_only:
        refuse_pending_migrations(database)
    elif migrate:
        migrate_database(database)
    return database


def refuse_pending_migrations(database):
    """A read-only process cannot migrate: say so rather than read a schema it does not know."""
    from playhouse.migrations import Runner
    pending = [m.name for m in Runner(database, directory=str(MIGRATIONS_DIR)).status() if not m.applied]
    if pending:
        raise ValidationError({"database": f"{len(pending)} migration(s) not applied yet ({', '.join(pending)}); "
                                           "any mailer command without --read-only applies them"})


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


