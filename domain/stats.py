"""The read models: what the command line, the console, the report and the metrics show, read once
here and returned as typed rows (`as_dict()` gives the command line's JSON).

Counts by status come from the counters the database keeps (domain.counts), a few rows a mailing;
nothing here reads message rows one at a time.
"""
import datetime as dt
import re
import threading
import time
from dataclasses import dataclass, field, replace

import peewee as pw

from domain import clients as client_directory
from domain import counts
from domain import opt_outs, rates, segments, settings
from domain import spread as spreading
from domain.audience import Filter
from domain.mailings import audience_count, get_mailing, spread_plan
from domain.states import gateway_pause
from domain.templates import load_attrs
from domain.times import utcnow
from domain.vocabulary import (DOUBT, FAILED, LIVE_STATES, MESSAGE_STATUSES, PENDING, RUNNING, SCHEDULED,
                               SENT, UNKNOWN)
from models import Attempt, Client, Heartbeat, Mailing, Message, RateBucket, shared_seconds

# A consumer is alive while its heartbeat moved within this long (it beats every HEARTBEAT_EVERY).
HEARTBEAT_EVERY = 2.0
HEARTBEAT_STALE = dt.timedelta(seconds=15)
RATE_WINDOW = 60  # seconds of sends the dashboard's rate covers


def iso(value):
    return value.isoformat() + "Z" if value else None


# ---------------------------------------------------------------------------------------------------
# Ordering a page by a column

SORT_SMALL = 20_000  # rows a page may be ordered by a column no index gives: each page sorts them all


@dataclass(frozen=True)
class Sorts:
    """The columns a paged read model can be ordered by, each as the fields of its ORDER BY (the last
    one unique, so that pages neither repeat nor skip a row). An `indexed` column's order is an index's:
    a page reads only its own rows, at any size. Any other is sorted by the database for every page,
    so it is offered only while the rows to order (the filtered count) are at most SORT_SMALL."""
    columns: dict  # column key -> (field, ...)
    indexed: frozenset
    default: tuple | None = None  # (column key, descending) the read model shows by itself, if a column
    small: int = SORT_SMALL

    def allowed(self, key, total):
        """Whether `key` may order `total` rows (None: not counted yet)."""
        if key not in self.columns:
            return False
        return key in self.indexed or (total is not None and total <= self.small)

    def order_by(self, sort):
        """The ORDER BY of `sort` ((key, descending)); ValueError for a column it cannot order by."""
        key, descending = sort
        if key not in self.columns:
            raise ValueError(f"cannot order by {key!r}")
        return [f.desc() if descending else f.asc() for f in self.columns[key]]


# ---------------------------------------------------------------------------------------------------
# Mailings and their counts


@dataclass(frozen=True)
class MailingRow:
    id: int
    state: str
    reason: str
    text: str
    operator: str | None
    tag: str | None
    window: str | None
    start_at: dt.datetime
    end_at: dt.datetime
    started_at: dt.datetime | None
    counts: dict = field(default_factory=dict)  # status -> messages
    total: int | None = 0  # how many should go: the materialized audience, or the audience it would
    # have now (None while that is not counted yet: AudienceCache)
    days: str | None = None  # the weekdays it sends on ('mon-fri'), None: every day
    spread: bool = False  # its messages go evenly until its end (or its window's close)
    finish: object = None  # a Finish: when a running one is expected through (the dashboard's)
    archived: bool = False  # hidden from lists (it had started when it was deleted)
    source_id: int | None = None  # the mailing it was cloned from
    source: tuple | None = None  # a resend's (original's id, statuses): Mailing.source
    filter: object = None  # its audience.Filter (operator and tag above: its one operator and tag, if so)

    @property
    def audience(self):
        """Its filter as one line: 'operator 900 or 916, tag vip, not messaged in 24h' or 'everyone'."""
        return (self.filter or Filter.of(self.operator, self.tag)).describe()

    @property
    def started(self):
        return self.started_at is not None

    @property
    def materialized(self):
        return sum(self.counts.values())

    @property
    def done(self):
        """Messages that are final (everything but pending)."""
        return self.materialized - self.counts.get(PENDING, 0)

    def count(self, status):
        return self.counts.get(status, 0)

    @property
    def billable(self):
        """Messages that are or may yet be billed: sent, in doubt (it may have reached the phone) and
        still pending; before it starts, its audience. Failed, expired, cancelled and suppressed ones
        never reached a phone."""
        if not self.materialized:
            return self.total or 0
        return self.count(SENT) + self.count(UNKNOWN) + self.count(PENDING)

    def cost(self, price=None):
        """What its text costs in SMS parts: per message, and for every billable message
        (segments.Estimate of the text as it is now: an edited text counts as its last version)."""
        return segments.estimate(self.text, self.billable, price)

    def as_dict(self, price=None):
        cost = self.cost(price)
        sent_parts = cost.segments.parts * self.count(SENT)
        return {"id": self.id, "state": self.state, "started": self.started, "total": self.total,
                "materialized": self.materialized, **{s: self.count(s) for s in MESSAGE_STATUSES},
                "text": self.text, "operator": self.operator, "tag": self.tag,
                "filter": (self.filter or Filter.of(self.operator, self.tag)).as_dict(), "window": self.window,
                "days": self.days, "spread": self.spread, "start": iso(self.start_at), "end": iso(self.end_at),
                "reason": self.reason, "archived": self.archived, "cloned_from": self.source_id,
                "only": list(self.source[1]) if self.source else None,
                "encoding": cost.segments.encoding, "parts_per_message": cost.segments.parts,
                "parts_sent": sent_parts, "parts_total": cost.parts,
                **({"cost_sent": f"{price.of(sent_parts).amount:.2f}", "cost_total": f"{cost.cost.amount:.2f}",
                    "currency": price.currency} if price is not None else {})}


def status_counts(mailing_ids=None):
    """{mailing id: {status: n}} (all mailings when mailing_ids is None), from the counters the
    database keeps (domain.counts): a few rows a mailing, not a scan of its messages."""
    return counts.status_counts(mailing_ids)


def _row(m, counts, audiences):
    counts = {s: counts.get(s, 0) for s in MESSAGE_STATUSES}
    # How many should go: those materialized once it started; before, those it would reach now;
    # none for a mailing that ended or was cancelled before it could start.
    if m.started_at:
        total = sum(counts.values())
    elif m.state == SCHEDULED:
        total = audiences[audience_key(m)]  # None: not counted yet
    else:
        total = 0
    return MailingRow(id=m.id, state=m.state, reason=m.state_reason, text=m.text, operator=m.operator,
                      tag=m.tag, window=m.window, start_at=m.start_at, end_at=m.end_at,
                      started_at=m.started_at, counts=counts, total=total, days=m.weekdays,
                      spread=bool(m.spread), archived=m.archived_at is not None, source_id=m.source_id,
                      source=m.source, filter=m.audience_filter)


def audience_key(m):
    """What a mailing's audience depends on: its filter, and a resend's original and statuses (the
    arguments of audience_count)."""
    key = (m.audience_filter,)
    return key + (m.source,) if m.source else key


def audience_counts(filters, cache=None):
    """{(filter[, source]): clients it reaches now}: one COUNT per distinct filter, not per mailing.
    `cache` (an AudienceCache) lets a screen that refreshes every second count them less often."""
    filters = set(filters)
    if cache is not None:
        return cache.counts(filters)
    return {f: audience_count(*f) for f in filters}


class AudienceCache:
    """Audience counts for a screen that refreshes every second. A scheduled mailing's total is the
    audience it would have now: a COUNT over the clients, tens to hundreds of ms at a million (an
    operator and a tag together read the table rows), which a refresh must not wait for. `counts`
    answers from what was counted (None for a filter never counted: its total shows as unknown) and
    notes what is missing or older than `max_age`; `fill` counts those, off the refresh's path."""

    def __init__(self, max_age=120.0, clock=time.monotonic):
        self.max_age = max_age
        self.clock = clock
        self._counts = {}  # filter -> (count, read at)
        self._wanted = set()  # filters to count (again)
        self._lock = threading.Lock()  # a page's worker notes what `fill`'s worker counts

    def counts(self, filters, budget=0.05):
        """{filter: count or None}. Filters never counted are counted here while less than `budget`
        seconds have gone by (all of them on a small directory); the rest, and the stale ones, are
        left for `fill`."""
        started = time.perf_counter()
        result = {}
        for f in sorted(set(filters), key=lambda f: (f[0].key(), repr(f[1:]))):
            count, at = self._counts.get(f, (None, None))
            if at is None and time.perf_counter() - started < budget:
                count = audience_count(*f)
                at = self.clock()
                self._counts[f] = (count, at)
            result[f] = count
            if at is None or self.clock() - at >= self.max_age:
                with self._lock:
                    self._wanted.add(f)
        return result

    @property
    def wanted(self):
        return bool(self._wanted)

    def fill(self):
        """Count the filters asked for and missing or stale; True when a count changed."""
        with self._lock:
            wanted, self._wanted = self._wanted, set()
        changed = False
        for f in wanted:
            count = audience_count(*f)
            changed |= self._counts.get(f, (None,))[0] != count
            self._counts[f] = (count, self.clock())
        return changed

    def clear(self):
        self._counts.clear()


def mailing_rows(query, audiences=None):
    """MailingRows for a query of mailings, their counts read in one statement and the audiences of
    the unstarted ones in one COUNT per distinct filter (`audiences`: an AudienceCache, optional)."""
    mailings = list(query)
    counts = status_counts([m.id for m in mailings])
    totals = audience_counts((audience_key(m) for m in mailings
                              if m.started_at is None and m.state == SCHEDULED), audiences)
    return [_row(m, counts.get(m.id, {}), totals) for m in mailings]


def mailing_row(mailing_id):
    """One mailing with its counts; ValidationError when there is none."""
    return mailing_rows(Mailing.select().where(Mailing.id == get_mailing(mailing_id).id))[0]


def all_mailings():
    """Every mailing as a MailingRow, oldest first."""
    return mailing_rows(Mailing.select().order_by(Mailing.id))


def mailing_page(limit=50, offset=0, audiences=None, archived=False):
    """A page of mailings, newest first, with their counts; and how many there are. Archived ones
    only with `archived`."""
    return (mailing_page_rows(limit, offset, audiences, archived=archived),
            mailing_count(archived=archived))


# The mailings screen's orders: by id (the primary key) and by state (the state index, whose entries
# end with the row id on SQLite) at any size; by start, end or text (no index) up to SORT_SMALL.
MAILING_SORTS = Sorts(
    columns={"id": (Mailing.id,), "state": (Mailing.state, Mailing.id),
             "start": (Mailing.start_at, Mailing.id), "end": (Mailing.end_at, Mailing.id),
             "text": (Mailing.text, Mailing.id)},
    indexed=frozenset({"id", "state"}), default=("id", True))


def mailing_search(query, search="", archived=False):
    """`query` narrowed to the mailings whose text, state, tag or operator contains `search`, or whose
    id it is ('12' or '#12'). A scan of the mailings table (no index helps a substring), which is
    small beside the clients and messages. Archived mailings are left out unless `archived`."""
    if not archived:
        query = query.where(Mailing.archived_at.is_null())
    search = (search or "").strip()
    if not search:
        return query
    cond = (Mailing.text.contains(search) | Mailing.state.contains(search)
            | Mailing.tag.contains(search) | Mailing.operator.contains(search)
            | Mailing.audience.contains(search))
    number = re.fullmatch(r"#?(\d{1,18})", search)
    if number:
        cond |= Mailing.id == int(number.group(1))
    return query.where(cond)


def mailing_page_rows(limit=50, offset=0, audiences=None, search="", sort=None, archived=False):
    """A page of mailings, newest first (by id, the primary key: no sort), with their counts; or
    those matching `search`, or in the order `sort` ((column key, descending), MAILING_SORTS)."""
    order = MAILING_SORTS.order_by(sort) if sort else [Mailing.id.desc()]
    query = mailing_search(Mailing.select(), search, archived).order_by(*order).limit(limit).offset(offset)
    return mailing_rows(query, audiences)


def mailing_count(search="", archived=False):
    return mailing_search(Mailing.select(), search, archived).count()


def mailings_by_state(search="", archived=False):
    """{state: mailings} (matching `search`) in one GROUP BY over the state index."""
    query = Mailing.select(Mailing.state, pw.fn.COUNT(pw.SQL("*"))).group_by(Mailing.state)
    return dict(mailing_search(query, search, archived).tuples())


def archived_count():
    """How many mailings are archived (the mailings screen says so while it hides them)."""
    return Mailing.select().where(Mailing.archived_at.is_null(False)).count()


def spread_until(row, now=None):
    """When a spread mailing (a MailingRow) sends its last message: once started, when its last
    pending one is due (None: none is); before, the end of its plan from its start (or now) over
    the zones of its audience now (None: its window never opens before its end)."""
    if row.started:
        return spreading.last_due(row.id)
    planned = spread_plan(get_mailing(row.id), now)
    return max(s.end for s in planned) if planned else None


def mailing_stats(mailing_id=None):
    """The command line's statistics: one dict per mailing (all of them, or one), with what they
    cost when MAILER_SEGMENT_PRICE is set."""
    price = settings.current().segment_price
    if mailing_id is not None:
        return [mailing_row(mailing_id).as_dict(price)]
    return [r.as_dict(price) for r in all_mailings()]


# A mailing's messages are shown in the order of the (mailing, client) index (no column for it); by
# status (then next attempt) in the order of the (mailing, status, next_attempt_at) index at any size;
# by any other column up to SORT_SMALL messages (a mailing may have a million).
MESSAGE_SORTS = Sorts(
    columns={"status": (Message.status, Message.next_attempt_at, Message.id), "id": (Message.id,),
             "phone": (Message.phone, Message.id), "attempts": (Message.attempts, Message.id),
             "sent_at": (Message.sent_at, Message.id),
             "next_attempt": (Message.next_attempt_at, Message.id)},
    indexed=frozenset({"status"}))


def message_query(mailing_id, status=None, phone="", message=None, sort=None):
    """A mailing's messages, optionally of one status (or of any of several), whose phone contains
    `phone`, or the one message `message`; in the order of the (mailing, client) index (a page needs
    no sort of the whole mailing), or in `sort`'s ((column key, descending), MESSAGE_SORTS)."""
    order = MESSAGE_SORTS.order_by(sort) if sort else [Message.client_id, Message.id]
    query = Message.select().where(Message.mailing == mailing_id).order_by(*order)
    if isinstance(status, str):
        query = query.where(Message.status == status)
    elif status:  # several statuses (mailer mailings export --status sent,failed)
        query = query.where(Message.status.in_(list(status)))
    if phone:
        query = query.where(Message.phone.contains(phone))
    if message is not None:
        query = query.where(Message.id == message)
    return query


@dataclass(frozen=True)
class MessageRow:
    """One message as a page of a mailing's messages shows it."""
    id: int
    phone: str
    status: str
    attempts: int
    sent_at: dt.datetime | None
    last_error: str | None
    next_attempt_at: dt.datetime | None = None  # when a pending one is tried next


def message_exists(message_id):
    return Message.select().where(Message.id == message_id).exists()


def message_count(mailing_id, status=None, phone="", message=None):
    """How many of a mailing's messages match the filter: from the counters when it names statuses
    only (the detail's usual count), else counted."""
    if not phone and message is None:
        by_status = counts.status_counts([mailing_id]).get(mailing_id, {})
        if status is None:
            return sum(by_status.values())
        return sum(by_status.get(s, 0) for s in ([status] if isinstance(status, str) else status))
    return message_query(mailing_id, status, phone, message).order_by().count()


def _message_row(m):
    return MessageRow(id=m.id, phone=m.phone, status=m.status, attempts=m.attempts, sent_at=m.sent_at,
                      last_error=m.last_error, next_attempt_at=m.next_attempt_at)


def message_page(mailing_id, status=None, limit=100, offset=0, phone="", message=None, sort=None):
    """One page of a mailing's messages (filtered as message_query filters), in message_query's order."""
    query = message_query(mailing_id, status, phone, message, sort).limit(limit).offset(offset)
    return [_message_row(m) for m in query]


def message_as_dict(m):
    return {"id": m.id, "mailing": m.mailing_id, "client": m.client_id, "phone": m.phone,
            "status": m.status, "attempts": m.attempts, "last_error": m.last_error,
            "created_at": iso(m.created_at), "sent_at": iso(m.sent_at),
            "next_attempt_at": iso(m.next_attempt_at), "text": m.text}


def mailing_as_dict(m):
    return {"id": m.id, "state": m.state, "text": m.text, "start": iso(m.start_at),
            "end": iso(m.end_at), "operator": m.operator, "tag": m.tag, "filter": m.audience_filter.as_dict(),
            "audience": m.audience_filter.describe(), "window": m.window,
            "days": m.weekdays, "spread": bool(m.spread), "reason": m.state_reason,
            "started_at": iso(m.started_at), "archived": m.archived_at is not None,
            "cloned_from": m.source_id, "only": list(m.source[1]) if m.source else None}


def client_as_dict(c, tags=None):
    """A client's JSON; `tags` (all of them, its first one first) read when not given."""
    tags = client_directory.client_tags([c.id]).get(c.id, []) if tags is None else tags
    attrs = c.attrs if isinstance(c.attrs, tuple) else sorted(load_attrs(c.attrs).items())
    return {"id": c.id, "phone": c.phone, "operator": c.operator, "tag": c.tag, "tags": list(tags), "tz": c.tz,
            "name": c.name, "attrs": dict(attrs)}


# ---------------------------------------------------------------------------------------------------
# Clients


@dataclass(frozen=True)
class ClientRow:
    id: int
    phone: str
    operator: str
    tag: str
    tz: str
    opted_out: bool = False  # its phone is on the stop list
    name: str = ""
    attrs: tuple = ()  # ((key, value), ...) sorted by key
    tags: tuple = ()  # all its tags, `tag` (its first) first

    @classmethod
    def of(cls, client, opted_out=False, tags=None):
        tags = client_directory.client_tags([client.id]).get(client.id, ()) if tags is None else tags
        return cls(id=client.id, phone=client.phone, operator=client.operator, tag=client.tag, tz=client.tz,
                   opted_out=opted_out, name=client.name or "",
                   attrs=tuple(sorted(load_attrs(client.attrs).items())), tags=tuple(tags))

    @property
    def tags_text(self):
        """'vip; new' (the CSV's `tags` column's way), '' without tags."""
        return "; ".join(self.tags or ((self.tag,) if self.tag else ()))

    def as_dict(self):
        return {**client_as_dict(self, self.tags), "opted_out": self.opted_out}


def _client_rows(clients):
    """ClientRows of these clients, each marked when its phone is on the stop list, with their tags
    (one query each)."""
    clients = list(clients)
    stopped = opt_outs.opted_out_phones(c.phone for c in clients)
    tags = client_directory.client_tags([c.id for c in clients])
    return [ClientRow.of(c, c.phone in stopped, tags.get(c.id, ())) for c in clients]


def client_count(search=""):
    """How many clients match the directory's free-text filter."""
    # Looked up on the module at call time (not imported by name), so a test can stand in for it.
    return client_directory.client_query(search).order_by().count()


# The directory's orders: by id (the primary key), phone (unique index), operator and tag (their
# indexes, whose entries end with the row id on SQLite) at any size; by zone (no index: a sort of every
# client for each page, 0.4 s at a million) only up to SORT_SMALL clients (a filter narrows them).
CLIENT_SORTS = Sorts(
    columns={"id": (Client.id,), "phone": (Client.phone,), "operator": (Client.operator, Client.id),
             "tag": (Client.tag, Client.id), "tz": (Client.tz, Client.id), "name": (Client.name, Client.id)},
    indexed=frozenset({"id", "phone", "operator", "tag"}), default=("id", True))


def client_page(search="", limit=100, offset=0, sort=None):
    """One page of the clients matching the filter, newest first, or in the order `sort` ((column
    key, descending), CLIENT_SORTS)."""
    query = client_directory.client_query(search)
    if sort:
        query = query.order_by(*CLIENT_SORTS.order_by(sort))
    return _client_rows(query.limit(limit).offset(offset))


def client_row(client_id):
    """One client as a ClientRow, or None when there is none (any more)."""
    client = Client.get_or_none(Client.id == client_id)
    return None if client is None else _client_rows([client])[0]


@dataclass(frozen=True)
class ClientMessageRow:
    """One message of a client, with its mailing's text, as the client's screen lists them."""
    id: int
    mailing_id: int
    mailing_text: str
    status: str
    attempts: int
    created_at: dt.datetime | None
    sent_at: dt.datetime | None
    last_error: str


def _client_messages(client_id, *fields):
    # No index leads with the client (see models.Message): the mailings are walked newest first and
    # each is probed in the (mailing, client) index, so a page costs at most one probe per mailing
    # however many messages there are, and stops once it has its rows. The unary + keeps SQLite from
    # walking the whole message index instead (it has no statistics to know better).
    mailing_id = pw.NodeList((pw.SQL("+"), Mailing.id), glue="")
    return (Mailing.select(*fields)
            .join(Message, on=((Message.mailing == mailing_id) & (Message.client_id == client_id))))


def client_message_count(client_id):
    """How many messages the client has, across every mailing."""
    return _client_messages(client_id, pw.fn.COUNT(pw.SQL("*"))).scalar() or 0


def client_message_page(client_id, limit=100, offset=0):
    """One page of the client's messages across every mailing, the newest mailing first."""
    query = (_client_messages(client_id, Message.id, Mailing.id, Mailing.text, Message.status,
                              Message.attempts, Message.created_at, Message.sent_at, Message.last_error)
             .order_by(Mailing.id.desc()).limit(limit).offset(offset))
    return [ClientMessageRow(id=r[0], mailing_id=r[1], mailing_text=r[2], status=r[3], attempts=r[4],
                             created_at=r[5], sent_at=r[6], last_error=r[7])
            for r in query.tuples()]


# ---------------------------------------------------------------------------------------------------
# Consumers


def alive(beats, now):
    """The heartbeats written within HEARTBEAT_STALE of `now`: what an operator is shown as alive.
    (Taking a consumer for dead is stricter, and uses no clock but the watcher's: engine.liveness.)"""
    return [b for b in beats if now - b.beat_at <= HEARTBEAT_STALE]


def consumers(now=None):
    """Every consumer's heartbeat row, the newest first, each with whether it is alive at `now`
    (`mailer health` and the API's GET /health): [(Heartbeat, alive)]."""
    rows = list(Heartbeat.select().order_by(Heartbeat.beat_at.desc()))
    fresh = {h.owner for h in alive(rows, now or utcnow())}
    return [(h, h.owner in fresh) for h in rows]


def live_consumers(now=None):
    """How many consumers beat recently (at least 1, at most 64): how many wake-ups to send."""
    since = (now or utcnow()) - HEARTBEAT_STALE
    return min(64, max(1, Heartbeat.select().where(Heartbeat.beat_at >= since).count()))


# ---------------------------------------------------------------------------------------------------
# The gateway's health, as a consumer's own attempts found it


def gateway_answered(outcome, http_status):
    """Whether an attempt got an answer from the gateway: an HTTP answer read whole, whatever its
    status (a 503 or a 401 is the gateway answering). Refused, reset and timed-out connections, and
    answers that could not be read (garbage, cut off, only an interim 1xx) are no answer."""
    return http_status is not None and outcome != DOUBT


@dataclass(frozen=True)
class GatewayHealth:
    """What one consumer's attempts say of the gateway, from evidence only: when an attempt last got
    an answer, and since when attempts get none, with the last one's cause in full. A consumer that
    sends nothing learns nothing: its health stays what its last attempts found. Folded from each
    answer in the sending threads (`noted`), written with the heartbeat every HEARTBEAT_EVERY. The
    rule needs only times that order: the engine folds epoch seconds, the rows hold naive UTC."""
    ok_at: dt.datetime | None = None  # the last attempt that got an answer
    failing_since: dt.datetime | None = None  # the first attempt without one since then (None: fine)
    failed_at: dt.datetime | None = None  # the last attempt without an answer
    cause: str = ""  # why that one got none

    @property
    def failing(self):
        return self.failing_since is not None

    def noted(self, answered, at, cause=""):
        """This health after one more attempt, answered or not at `at`. Answers come back out of
        order from many threads: an answer clears a failure only if it came after the last attempt
        that failed, and a failure older than the last answer is remembered but is not a failure
        now."""
        if answered:
            ok_at = at if self.ok_at is None else max(self.ok_at, at)
            if self.failing and self.failed_at is not None and at < self.failed_at:
                return replace(self, ok_at=ok_at)
            return replace(self, ok_at=ok_at, failing_since=None)
        newest = self.failed_at is None or at >= self.failed_at
        failed_at = at if newest else self.failed_at
        cause = cause if newest else self.cause
        since = self.failing_since
        if since is not None:
            since = min(since, at)
        elif self.ok_at is None or at > self.ok_at:
            since = at
        return GatewayHealth(self.ok_at, since, failed_at, cause)

    @classmethod
    def of(cls, beat):
        """The health a heartbeat row carries."""
        return cls(beat.gateway_ok_at, beat.gateway_failing_since, beat.gateway_failed_at,
                   beat.gateway_error or "")


def combined_health(healths):
    """One health for the gateway from several consumers' own: failing when any of them is (the
    earliest since, the latest cause: a consumer cut off from the gateway is worth knowing of even
    while another reaches it); the last answer any of them got."""
    healths = list(healths)
    oks = [h.ok_at for h in healths if h.ok_at is not None]
    ok_at = max(oks) if oks else None
    failing = [h for h in healths if h.failing]
    if not failing:
        return GatewayHealth(ok_at=ok_at)
    latest = max(failing, key=lambda h: h.failed_at or h.failing_since)
    return GatewayHealth(ok_at, min(h.failing_since for h in failing), latest.failed_at, latest.cause)


# ---------------------------------------------------------------------------------------------------
# The dashboard


LIVE_SHOWN = 50  # the dashboard's live mailings: the newest this many


@dataclass(frozen=True)
class Dashboard:
    now: dt.datetime
    series: list  # sends per second over the last RATE_WINDOW seconds, oldest first
    outcomes: dict  # attempt outcome -> count over the last RATE_WINDOW seconds
    beats: list  # every heartbeat row, the newest first
    live: list  # MailingRows of the newest LIVE_SHOWN mailings that may still send, newest first
    failed_total: int | None  # None when not read this time (see dashboard's with_totals)
    gateway_pause: tuple | None  # (until, reason)
    live_total: int = 0  # how many mailings may still send in all (live shows at most LIVE_SHOWN)
    caps: rates.Caps = rates.Caps()  # the throughput caps of this console's settings
    applied: list = field(default_factory=list)  # AppliedCap: what consumers apply, where it differs

    @property
    def alive(self):
        return alive(self.beats, self.now)

    def gateway_health(self, beats=None):
        """The gateway's health as the consumers shown alive (or `beats`) found it."""
        return combined_health(GatewayHealth.of(b) for b in (self.alive if beats is None else beats))


@dataclass(frozen=True)
class Finish:
    """When a running mailing's pending messages are expected through, at the rate it sent over the
    last minute: `at` (and `seconds` from the reading), `missed` of them would not go before its end
    (the finish falls after it); or, spread, when its last pending message is due; or nothing
    pending. A mailing whose rate is unknown (it sent nothing lately) has no Finish."""
    at: dt.datetime | None = None
    seconds: float | None = None  # from `now` of the reading to `at`
    missed: int = 0  # pending messages that would not go before the end
    spread_until: dt.datetime | None = None
    none_pending: bool = False

    @property
    def late(self):
        return self.missed > 0


def finish_of(row, now, sent, spread_until=None, window=RATE_WINDOW):
    """The Finish of a MailingRow read at `now`, that sent `sent` messages over the last `window`
    seconds (or since it started, if later): None when it is not running or its rate is unknown."""
    if row.state != RUNNING:
        return None
    pending = row.count(PENDING)
    if pending <= 0:
        return Finish(none_pending=True)
    if row.spread:
        return Finish(spread_until=spread_until) if spread_until is not None else None
    lasted = window if row.started_at is None else min(window, (now - row.started_at).total_seconds())
    per_second = sent / max(1.0, lasted)
    at = rates.expected_finish(now, pending, per_second)
    if at is None:
        return None
    missed = 0
    if at > row.end_at:
        missed = pending - int(per_second * max(0.0, (row.end_at - now).total_seconds()))
    return Finish(at=at, seconds=(at - now).total_seconds(), missed=missed)


def recent_sends(since):
    """{mailing id: messages sent since `since`}: one GROUP BY over the journal's `at` index (the
    last minute's rows, however long the journal), for every mailing that sent lately."""
    return dict(recent_sends_query(since).tuples())


def recent_sends_query(since):
    # Grouped by mailing_id + 0, not the column: SQLite would otherwise read the whole journal in
    # the order of its mailing_id index to skip a sort of the minute's rows. (A literal 0: PostgreSQL
    # must see the same expression in the SELECT list and the GROUP BY.)
    mailing = Attempt.mailing_id + pw.SQL("0")
    return (Attempt.select(mailing, pw.fn.COUNT(Attempt.id))
            .where((Attempt.at >= since) & (Attempt.outcome == SENT)).group_by(mailing))


def last_pending_at(mailing_id):
    """When a mailing's last pending message is due: the end of the (mailing, status,
    next_attempt_at) index's pending run, read backwards, one entry."""
    last = last_pending_query(mailing_id).first()
    return last.next_attempt_at if last is not None else None


def last_pending_query(mailing_id):
    return (Message.select(Message.next_attempt_at)
            .where((Message.mailing == mailing_id) & (Message.status == PENDING))
            .order_by(Message.next_attempt_at.desc()).limit(1))


@dataclass(frozen=True)
class AppliedCap:
    """A cap a consumer applied within the last minute (a RateBucket row it took from) that is not
    this console's setting for the same key: another configuration sends."""
    key: str  # rates.TOTAL or rates.operator_key(code)
    rate: float
    unit: str
    ours: float | None  # this console's cap for that key (None: none)

    def text(self, unit=None):
        """'consumers apply 30/s in all (here: 50/s)'; units named when they differ from `unit`
        (this console's)."""
        what = "in all" if self.key == rates.TOTAL else self.key
        theirs = f"{self.rate:g} {self.unit}/s" if unit and unit != self.unit else f"{self.rate:g}/s"
        ours = "no cap" if self.ours is None else f"{self.ours:g} {unit}/s" if unit and unit != self.unit else f"{self.ours:g}/s"
        return f"consumers apply {theirs} {what} (here: {ours})"


BUCKET_RECENT = 60  # seconds: a bucket taken from within this long tells what consumers apply now


def caps_applied_elsewhere(caps):
    """The caps consumers applied within the last BUCKET_RECENT seconds (by the clock the buckets are
    written with, models.shared_seconds) that differ from `caps` (rates.Caps): a few rows, one per cap."""
    now = shared_seconds()
    differ = []
    for bucket in RateBucket.select().where(RateBucket.at >= now - BUCKET_RECENT).order_by(RateBucket.key):
        if bucket.key == rates.TOTAL:
            ours = caps.total
        elif bucket.key.startswith(rates.operator_key("")):
            ours = caps.operators.get(bucket.key[len(rates.operator_key("")):])
        else:
            continue
        if ours is None or abs(bucket.rate - ours) > 1e-9 or bucket.unit != caps.unit:
            differ.append(AppliedCap(bucket.key, bucket.rate, bucket.unit, ours))
    return differ


def failed_total():
    """Messages failed in all, from the counters. (The dashboard still reads it now and then, not every
    second: a habit from when it was a scan of the message table.)"""
    return counts.status_totals().get(FAILED, 0)


def dashboard(now=None, limit=LIVE_SHOWN, with_totals=True, audiences=None):
    """Everything the dashboard shows, read in one go; every query bounded (the last RATE_WINDOW
    seconds of the journal through its `at` index, at most `limit` mailings) but the failed total,
    read only with_totals."""
    now = now or utcnow()
    since = now - dt.timedelta(seconds=RATE_WINDOW)
    # 'YYYY-MM-DD HH:MM:SS' on both engines (SQLite stores the text; PostgreSQL has a timestamp). The
    # bounds are literals: PostgreSQL does not see substr(at, $1, $2) and substr(at, $3, $4) as the
    # same expression, in the SELECT list and in the GROUP BY.
    second = pw.fn.substr(Attempt.at.cast("text"), pw.SQL("1"), pw.SQL("19")).coerce(False)
    per_second = {str(k)[:19]: n for k, n in Attempt.select(second, pw.fn.COUNT(Attempt.id))
                  .where((Attempt.at >= since) & (Attempt.outcome == SENT)).group_by(second).tuples()}
    series = [per_second.get((now - dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S"), 0)
              for i in range(RATE_WINDOW, 0, -1)]
    outcomes = dict(Attempt.select(Attempt.outcome, pw.fn.COUNT(Attempt.id)).where(Attempt.at >= since)
                    .group_by(Attempt.outcome).tuples())
    # The newest `limit` of each live state, read in the order of the state index (state, then id:
    # no sort of every live mailing), then the newest `limit` of those.
    newest = sorted((m for state in LIVE_STATES for m in Mailing.select().where(Mailing.state == state)
                     .order_by(Mailing.id.desc()).limit(limit)), key=lambda m: -m.id)[:limit]
    live = mailing_rows(newest, audiences)
    # Each running mailing's expected finish: its sends of the last minute (one GROUP BY for all),
    # its pending count (the rows' counts), a spread one's last due message (one index entry each).
    sent = recent_sends(since) if any(r.state == RUNNING for r in live) else {}
    live = [replace(r, finish=finish_of(r, now, sent.get(r.id, 0),
                                        last_pending_at(r.id) if r.spread and r.state == RUNNING else None))
            if r.state == RUNNING else r for r in live]
    caps = rates.Caps.of(settings.current())
    return Dashboard(
        now=now, series=series, outcomes=outcomes,
        beats=list(Heartbeat.select().order_by(Heartbeat.beat_at.desc())),
        live=live, caps=caps, applied=caps_applied_elsewhere(caps),
        live_total=Mailing.select().where(Mailing.state.in_(LIVE_STATES)).count(),
        failed_total=failed_total() if with_totals else None,
        gateway_pause=gateway_pause(now))


# ---------------------------------------------------------------------------------------------------
# The send journal


def journal_page(after_id=0, mailing=None, client=None, message=None, newest=False, limit=500):
    """Journal rows (Attempt rows: attempts and decisions) after `after_id` matching the filter, oldest
    first; with newest=True the last `limit` of them (still returned oldest first)."""
    query = Attempt.select().where(Attempt.id > after_id)
    if mailing is not None:
        query = query.where(Attempt.mailing_id == mailing)
    if client is not None:
        query = query.where(Attempt.client_id == client)
    if message is not None:
        query = query.where(Attempt.message == message)
    if newest:
        return list(reversed(list(query.order_by(Attempt.id.desc()).limit(limit))))
    return list(query.order_by(Attempt.id).limit(limit))


def last_journal_id():
    return Attempt.select(Attempt.id).order_by(Attempt.id.desc()).scalar() or 0


# ---------------------------------------------------------------------------------------------------
# Totals (metrics)


def totals():
    """(messages by status, mailings by state) over everything: the counters, and a GROUP BY over the
    mailings' state index."""
    count = pw.fn.COUNT(pw.SQL("*"))
    messages = counts.status_totals()
    mailings = dict(Mailing.select(Mailing.state, count).group_by(Mailing.state).tuples())
    return messages, mailings


def due_now(now=None):
    """Pending messages of running mailings that are due and unclaimed now."""
    now = now or utcnow()
    return (Message.select(pw.fn.COUNT(pw.SQL("*")))
            .join(Mailing, on=(Mailing.id == Message.mailing))
            .where((Message.status == PENDING) & (Message.next_attempt_at <= now)
                   & Message.lease_owner.is_null() & (Mailing.state == RUNNING) & (Mailing.end_at > now))
            .scalar()) or 0


# ---------------------------------------------------------------------------------------------------
# Whole views, a page at a time (the console's CSV export)
#
# Each yields lists of at most `size` rows, in the order its screen shows them, reading each page with
# one keyed query (after the last key seen, not OFFSET): the millionth row costs what the first does,
# and only one page is held at a time.

EXPORT_PAGE = 5000


def _keyed_pages(query, fields, key, after, size, key_at=0, convert_times=True):
    """Pages of `fields` of `query`'s rows, as tuples (ordered by `key`, unique among them): each the
    next `size` rows past the last one's key (at `key_at` in the row); `after(key, value)` is the
    condition "past value". Rows are read from the cursor as they are, without peewee building a row
    for each (four times faster at a million); only times are converted (not even they without
    `convert_times`: as the driver gives them, SQLite's text or PostgreSQL's datetimes)."""
    query = query.select(*fields)
    times_at = [(i, f.python_value) for i, f in enumerate(fields)
                if convert_times and isinstance(f, pw.DateTimeField)]
    database = query.model._meta.database
    last = None
    while True:
        page = database.execute((query if last is None else query.where(after(key, last))).limit(size)).fetchall()
        if times_at:
            page = [_converted(row, times_at) for row in page]
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1][key_at]


def _converted(row, converters):
    row = list(row)
    for i, convert in converters:
        row[i] = convert(row[i])
    return row


def _below(field, value):
    return field < value


def _above(field, value):
    return field > value


def client_pages(search="", size=EXPORT_PAGE):
    """Every client matching the directory's filter, newest first (client_page's order)."""
    fields = (Client.id, Client.phone, Client.operator, Client.tag, Client.tz, Client.name)
    for page in _keyed_pages(client_directory.client_query(search), fields, Client.id, _below, size):
        stopped = opt_outs.opted_out_phones(row[1] for row in page)
        tags = client_directory.client_tags([row[0] for row in page])
        yield [ClientRow(*row[:5], opted_out=row[1] in stopped, name=row[5] or "",
                         tags=tuple(tags.get(row[0], ()))) for row in page]


class _AudienceMemo:
    """Audience counts for one pass over every mailing: each distinct filter counted once."""

    def __init__(self):
        self._counts = {}

    def counts(self, filters):
        for f in filters:
            if f not in self._counts:
                self._counts[f] = audience_count(*f)
        return {f: self._counts[f] for f in filters}


def mailing_pages(search="", size=EXPORT_PAGE, archived=False):
    """Every mailing (matching `search`: mailing_search) with its counts, newest first
    (mailing_page_rows' order); each page's counts in one GROUP BY."""
    memo = _AudienceMemo()
    query = mailing_search(Mailing.select(), search, archived).order_by(Mailing.id.desc())
    for page in _keyed_pages(query, (Mailing.id,), Mailing.id, _below, size):
        ids = [row[0] for row in page]
        yield mailing_rows(Mailing.select().where(Mailing.id.in_(ids)).order_by(Mailing.id.desc()), memo)


def message_tuples(mailing_id, fields, status=None, phone="", message=None, size=EXPORT_PAGE,
                   convert_times=True):
    """Pages of tuples of `fields` (the first Message.id, the last Message.client_id: the keys) of
    every message of a mailing (filtered as message_query filters), in message_query's order: by
    client, the messages of deleted clients (no client any more) where the database sorts a NULL
    (first on SQLite, last on PostgreSQL), among themselves by id. A client has one message per
    mailing, so the client id keys the others; both walk the (mailing, client) index, a page past the
    last key each, never an OFFSET nor a sort of the whole mailing (tests/test_query_plans.py)."""
    query = message_query(mailing_id, status, phone, message)
    orphans = _keyed_pages(query.where(Message.client_id.is_null()).order_by(Message.id), fields,
                           Message.id, _above, size, convert_times=convert_times)
    clients = _keyed_pages(query.where(Message.client_id.is_null(False)), fields, Message.client_id,
                           _above, size, key_at=-1, convert_times=convert_times)
    nulls_last = isinstance(Message._meta.database.obj, pw.PostgresqlDatabase)
    for pages in ((clients, orphans) if nulls_last else (orphans, clients)):
        yield from pages


@dataclass(frozen=True)
class JournalRow:
    """One journal row as an export writes it."""
    id: int
    at: dt.datetime
    message_id: int
    mailing_id: int
    client_id: int | None
    outcome: str
    http_status: int | None
    latency_ms: float | None
    error: str
    owner: str | None


def journal_pages(mailing=None, client=None, message=None, size=EXPORT_PAGE):
    """Every journal row matching the live log's filter, oldest first (as the log shows them)."""
    query = Attempt.select().order_by(Attempt.id)
    for column, value in ((Attempt.mailing_id, mailing), (Attempt.client_id, client), (Attempt.message, message)):
        if value is not None:
            query = query.where(column == value)
    fields = (Attempt.id, Attempt.at, Attempt.message, Attempt.mailing_id, Attempt.client_id, Attempt.outcome,
              Attempt.http_status, Attempt.latency_ms, Attempt.error, Attempt.owner)
    for page in _keyed_pages(query, fields, Attempt.id, _above, size):
        yield [JournalRow(*row) for row in page]
