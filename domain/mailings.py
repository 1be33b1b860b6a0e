"""Defining a mailing: its fields, its audience (the clients its filter matches) and materializing
that audience as one pending message per client. Its life after that is in `domain.states`."""
import datetime as dt

import peewee as pw

from domain import counts, rates, segments, settings, spread as spreading, templates
from domain.audience import Filter, clean_filter, format_duration
from domain.times import parse_when, to_naive_utc, utcnow
from domain.validation import ValidationError, validate_text
from domain.vocabulary import (CANCELLED, FINISHED, PAUSED, PENDING, RESEND_STATUSES, RUNNING, SCHEDULED,
                               status_label)
from domain.windows import parse_days, parse_window
from models import Client, ClientTag, Mailing, Message, OptOut, db


def audience_filter(flt=None, source=None, now=None):
    """The clients a mailing's audience is made of: those its filter (an audience.Filter; None: every
    client) matches, its frequency cap judged at `now`; for a resend (`source`: (original's id,
    statuses), Mailing.source), only the clients of the original's messages in those statuses (still
    in the directory: a deleted client's message has no client left); its frequency cap does not
    count the original's own messages."""
    cond = (flt or Filter()).cond(now, besides=source[0] if source else None)
    if source:
        source_id, statuses = source
        cond &= Client.id.in_(Message.select(Message.client_id).where(
            (Message.mailing == source_id) & Message.status.in_(list(statuses))))
    return cond


def matching_count(flt=None, source=None):
    """Clients the filter matches, opted out or not (operators alone: from the (operator, tag) index
    alone; tags from the (tag, client_id) index)."""
    return Client.select().where(audience_filter(flt, source)).count()


def opted_out_count(flt=None, source=None):
    """Clients the filter matches whose phone is on the stop list: from the stop list (short) to
    the clients by their phone, so the count of everyone else stays an index-only count."""
    return opted_out_query(flt, source).scalar()


def opted_out_query(flt=None, source=None):
    # EXISTS, not a join: SQLite, knowing nothing of the tables' sizes, drove a join from the
    # clients of the filter (250,000 probes, 110-240 ms for an empty stop list).
    clients = Client.select(pw.SQL("1")).where((Client.phone == OptOut.phone) & audience_filter(flt, source))
    return OptOut.select(pw.fn.COUNT(pw.SQL("*"))).where(pw.fn.EXISTS(clients))


def audience_count(flt=None, source=None):
    """The clients a mailing with this filter would reach now: matching and not opted out."""
    return matching_count(flt, source) - opted_out_count(flt, source)


def parse_statuses(value):
    """'failed,expired' (or a list) -> ('failed', 'expired'): the statuses a resend picks of the
    original's messages, from RESEND_STATUSES ('in doubt' or 'doubt' said for unknown)."""
    words = value if isinstance(value, (list, tuple)) else str(value or "").replace(" ", ",").split(",")
    words = [w.strip().lower() for w in words if w and w.strip()]
    words = ["unknown" if w in ("doubt", "in-doubt", "in_doubt") else w for w in words]
    bad = [w for w in words if w not in RESEND_STATUSES]
    if bad or not words:
        raise ValidationError({"only": f"must be statuses among {', '.join(RESEND_STATUSES)} "
                                       f"(unknown: in doubt, it may have been delivered); got "
                                       f"{', '.join(map(repr, bad)) or 'nothing'}"})
    return tuple(s for s in RESEND_STATUSES if s in words)  # in one order, each once


def describe_source(source):
    """'the clients of mailing 3's failed or expired messages' for a resend's (id, statuses)."""
    source_id, statuses = source
    return (f"the clients of mailing {source_id}'s "
            f"{' or '.join(status_label(s) for s in statuses)} messages")


def audience_by_operator(flt=None, recipients=None, source=None):
    """{operator code: recipients} of a filter's audience, as the caps need it: counted by operator
    only when MAILER_RATE_OPERATOR names some and the filter does not pick one operator already (a
    GROUP BY over the (operator, tag) index, and the stop list's phones looked up by phone); else
    the `recipients` counted already (audience_count when not given) under the filter's operator."""
    caps = rates.Caps.of(settings.current())
    flt = flt or Filter()
    if len(flt.operators) == 1 or not caps.operators:
        operator = flt.operators[0] if len(flt.operators) == 1 else None
        return {operator: audience_count(flt, source) if recipients is None else recipients}
    cond = audience_filter(flt, source)
    counts = dict(Client.select(Client.operator, pw.fn.COUNT(pw.SQL("*"))).where(cond)
                  .group_by(Client.operator).tuples())
    # From the stop list (short) to each phone's client, as opted_out_query: never a pass over the
    # clients of the filter.
    for code, n in opted_out_by_operator_query(cond).tuples():
        if code is not None:
            counts[code] = counts.get(code, 0) - n
    return {code: n for code, n in counts.items() if n > 0}


def opted_out_by_operator_query(cond):
    client_operator = Client.select(Client.operator).where((Client.phone == OptOut.phone) & cond)
    return OptOut.select(client_operator.alias("op"), pw.fn.COUNT(pw.SQL("*"))).group_by(pw.SQL("op"))


def cap_shortfall(text, start_at, end_at, by_operator, now=None, caps=None, windowed=False):
    """What the throughput caps (MAILER_RATE, MAILER_RATE_OPERATOR) leave out of an audience
    ({operator: recipients}: audience_by_operator) between max(start, now) and the end: a
    rates.Shortfall, or None when it all fits. A window or days (`windowed`) are not counted: they
    leave less time than this, never more, and the text says so."""
    caps = rates.Caps.of(settings.current()) if caps is None else caps
    if not caps:
        return None
    now = to_naive_utc(now or utcnow())
    parts = segments.count(text or "").parts
    return rates.limit(max(to_naive_utc(start_at), now), to_naive_utc(end_at), by_operator, caps, parts,
                       windowed)


def audience_zones(flt=None, source=None):
    """The distinct time zones of the clients a filter matches (a few, however many clients)."""
    return [tz for (tz,) in Client.select(Client.tz).where(audience_filter(flt, source)).distinct().tuples()]


def filter_values():
    """The operator codes and tags that exist, for pickers and for checking filters."""
    operators = [o for (o,) in Client.select(Client.operator).distinct().order_by(Client.operator).tuples()]
    tags = [t for (t,) in ClientTag.select(ClientTag.tag).distinct().order_by(ClientTag.tag).tuples()]
    return operators, tags


def running_mailing_ids():
    """The ids of the mailings running now (the console asks before it quits on them)."""
    return [i for (i,) in Mailing.select(Mailing.id).where(Mailing.state == RUNNING)
            .order_by(Mailing.id).tuples()]


def clean_mailing(text, start, end, operator=None, tag=None, window=None, now=None, tz=None,
                  require_future_end=True, max_parts=None, days=None, spread=False, all_tags=None,
                  not_tags=None, skip_recent=None):
    """Validate a mailing's fields (times as operator strings or datetimes) -> dict of columns.
    The filter (audience.clean_filter): `operator` and `tag` any of (a comma list, or a list),
    `all_tags`, `not_tags`, `skip_recent` ('24h'). `max_parts`: a text of more SMS parts is refused
    (the operator has not confirmed it); `spread`: its messages go evenly until its end (or its
    window's close) rather than at once."""
    now = now or utcnow()
    errors, row = {}, {}

    def check(field, fn):
        try:
            row[field] = fn()
        except ValidationError as exc:
            errors.update(exc.errors)

    try:
        flt, filter_errors = clean_filter(operator, tag, all_tags, not_tags, skip_recent), {}
    except ValidationError as exc:
        flt, filter_errors = None, exc.errors
    check("text", lambda: templates.check(validate_text(text)))
    profile = None
    if "text" in row and flt is not None and templates.compile_text(row["text"]).personal:
        profile = value_profile(row["text"], flt)
        nobody = unheld_placeholder(row["text"], profile, flt)
        if nobody:
            errors["text"] = nobody
    if "text" in row and max_parts is not None and "text" not in errors:
        # a personal text on its longest rendering over the audience the filter has now
        counted = templates.worst_segments(row["text"], profile) if profile is not None else None
        too_many = segments.too_many_parts(row["text"], max_parts, counted)
        if too_many:
            errors["text"] = too_many
    check("start_at", lambda: to_naive_utc(start) if isinstance(start, dt.datetime)
          else parse_when(start, "start", tz, now))
    check("end_at", lambda: to_naive_utc(end) if isinstance(end, dt.datetime)
          else parse_when(end, "end", tz, now))
    errors.update(filter_errors)
    if flt is not None:
        row["filter"] = flt
    check("window", lambda: parse_window(window))
    check("days", lambda: parse_days(days) if not isinstance(days, int) else days)
    if "start_at" in row and "end_at" in row:
        if row["end_at"] <= row["start_at"]:
            errors["end"] = "must be after the start"
        elif require_future_end and row["end_at"] <= now:
            errors["end"] = "is in the past"
    if errors:
        raise ValidationError({"end" if k == "end_at" else "start" if k == "start_at" else k: v
                               for k, v in errors.items()})
    row.update(row.pop("filter").columns())
    window_cols = row.pop("window")
    row["window_start"], row["window_end"] = window_cols or (None, None)
    row["spread"] = bool(spread)
    return row


def _max_parts(confirm_parts):
    return None if confirm_parts else settings.current().max_parts


def window_or_default(window):
    """A new mailing's window: the one given ('any': every hour), else MAILER_DEFAULT_WINDOW."""
    if window is not None and str(window).strip():
        return window
    return settings.current().default_window or None


def _with_source(row, cloned_from, only):
    """A new mailing's columns with the original it was cloned from and, for a resend, the statuses
    of the original's messages whose clients it reaches."""
    if only and not cloned_from:
        raise ValidationError({"only": "picks messages of the mailing cloned: only a clone has it"})
    if cloned_from:
        source = get_mailing(cloned_from)
        row["source_id"] = source.id
        if only:
            row["source_statuses"] = ",".join(parse_statuses(only))
            if source.started_at is None:
                raise ValidationError({"only": f"mailing {source.id} never started: it has no messages "
                                               f"to resend"})
    return row


def create_mailing(text, start, end, operator=None, tag=None, window=None, tz=None, confirm_parts=False,
                   days=None, spread=False, cloned_from=None, only=None, all_tags=None, not_tags=None,
                   skip_recent=None):
    """Create a mailing, scheduled (`states.start_if_due` starts it when its start has come); without
    a window it has the default one (quiet hours), if any. A clone names its original
    (`cloned_from`); a resend also the statuses of the original's messages whose clients it reaches
    (`only`: parse_statuses), its filter narrowing them further."""
    row = clean_mailing(text, start, end, operator, tag, window_or_default(window), tz=tz,
                        max_parts=_max_parts(confirm_parts), days=days, spread=spread, all_tags=all_tags,
                        not_tags=not_tags, skip_recent=skip_recent)
    return Mailing.create(**_with_source(row, cloned_from, only))


def row_source(row):
    """Mailing.source of a row of columns (clean_mailing's, with _with_source's)."""
    if not row.get("source_statuses"):
        return None
    return row["source_id"], tuple(row["source_statuses"].split(","))


def clone_fields(source_id, start=None, end=None, tz=None, now=None, **given):
    """The fields of a new mailing cloned from mailing `source_id`: its text, filter, window, days and
    spread, those `given` (not None) instead; from `start` (default now) for as long as the original
    ran (its end minus its start) unless `end` is given."""
    source = get_mailing(source_id)
    now = now or utcnow()
    start = start if start is not None else "now"
    try:
        start = parse_when(start, "start", tz, now)  # one instant for the start and the end from it
    except ValidationError:
        pass  # said by clean_mailing
    if end is None:
        end = (start if isinstance(start, dt.datetime) else now) + (source.end_at - source.start_at)
    flt = source.audience_filter
    fields = {"text": source.text, "operator": list(flt.operators), "tag": list(flt.tags),
              "all_tags": list(flt.all_tags), "not_tags": list(flt.not_tags),
              "skip_recent": format_duration(flt.skip_recent) or "",
              # no window is any hour (not MAILER_DEFAULT_WINDOW, which a new mailing without one gets)
              "window": source.window or "any", "days": source.weekdays or "", "spread": bool(source.spread)}
    fields.update({k: v for k, v in given.items() if v is not None})
    return {**fields, "start": start, "end": end, "cloned_from": source.id}


def duration_text(span):
    """A timedelta as the relative time an operator types: '+2h', '+90m', '+1d', '+45s'."""
    seconds = max(int(span.total_seconds()), 1)
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"+{seconds // size}{unit}"
    return f"+{seconds}s"


def preview_mailing(text, start, end, operator=None, tag=None, window=None, tz=None, days=None, spread=False,
                    now=None, cloned_from=None, only=None, all_tags=None, not_tags=None, skip_recent=None):
    """What creating this mailing would do, writing nothing: its columns, what its text costs over
    the audience it would have now (a segments.Estimate), how many matching clients opted out, and
    what the throughput caps would leave out of that audience before its end (cap_shortfall)."""
    now = now or utcnow()
    row = clean_mailing(text, start, end, operator, tag, window_or_default(window), now=now, tz=tz, days=days,
                        spread=spread, all_tags=all_tags, not_tags=not_tags, skip_recent=skip_recent)
    source = row_source(_with_source(row, cloned_from, only))
    flt = Filter.of_mailing(row)
    matching = matching_count(flt, source)
    opted_out = opted_out_count(flt, source)
    recipients = matching - opted_out
    short = cap_shortfall(row["text"], row["start_at"], row["end_at"],
                          audience_by_operator(flt, recipients, source), now,
                          windowed=row["window_start"] is not None or row["days"] is not None)
    counted = text_segments(row["text"], flt, source)
    return row, segments.Estimate(counted, recipients, settings.current().segment_price), opted_out, short


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


EDITABLE_WHILE_RUNNING = {"text", "end", "spread"}


def edit_mailing(mailing_id, text=None, start=None, end=None, operator=None, tag=None, window=None,
                 tz=None, confirm_parts=False, days=None, spread=None, all_tags=None, not_tags=None,
                 skip_recent=None):
    """A scheduled mailing can change anything; a running or paused one its text and end (for what
    is still unsent) and whether it spreads. Pass "" to clear the filter, the window or the days.

    A running spread mailing given a new end, or spread from now on, spreads what it has not sent
    over what is left (a paused one when it resumes); spread turned off, what it has not tried yet is
    due now."""
    given = {k for k, v in dict(text=text, start=start, end=end, operator=operator, tag=tag,
                                window=window, days=days, spread=spread, all_tags=all_tags, not_tags=not_tags,
                                skip_recent=skip_recent).items() if v is not None}
    with db.atomic():
        mailing = get_mailing(mailing_id, lock=True)
        if mailing.state in (FINISHED, CANCELLED):
            raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}; it cannot change"})
        if mailing.state != SCHEDULED and given - EDITABLE_WHILE_RUNNING:
            raise ValidationError({sorted(given - EDITABLE_WHILE_RUNNING)[0]:
                                   f"mailing {mailing.id} is {mailing.state}: only its text, end and "
                                   f"spread can change"})
        old = mailing.audience_filter
        row = clean_mailing(
            text if text is not None else mailing.text,
            start if start is not None else mailing.start_at,
            end if end is not None else mailing.end_at,
            operator if operator is not None else list(old.operators),
            tag if tag is not None else list(old.tags),
            window if window is not None else mailing.window, tz=tz,
            # a text saved long before, confirmed then, is not asked about again while it stays
            max_parts=_max_parts(confirm_parts or text is None or text == mailing.text),
            days=days if days is not None else mailing.days,
            spread=spread if spread is not None else mailing.spread,
            all_tags=all_tags if all_tags is not None else list(old.all_tags),
            not_tags=not_tags if not_tags is not None else list(old.not_tags),
            skip_recent=skip_recent if skip_recent is not None else format_duration(old.skip_recent))
        if mailing.state != SCHEDULED:
            row = {"text": row["text"], "end_at": row["end_at"], "spread": row["spread"]}
        now = utcnow()
        row["updated_at"] = now
        Mailing.update(**row).where(Mailing.id == mailing.id).execute()
        edited = get_mailing(mailing.id)
        if edited.state == RUNNING and edited.spread and (not mailing.spread or edited.end_at != mailing.end_at):
            spreading.spread_pending(edited, now)
        elif mailing.spread and not edited.spread and edited.state != SCHEDULED:
            spreading.unspread_pending(edited, now)
    return edited


def spread_plan(mailing, now=None):
    """The spreading.Spans of a spread mailing (a Mailing, or clean_mailing's row) from its start, or
    now if later, over the zones of the audience it would have now (with a window or days)."""
    get = mailing.get if isinstance(mailing, dict) else lambda name: getattr(mailing, name)
    source = row_source(mailing) if isinstance(mailing, dict) else mailing.source
    window, days = spreading.window_of(mailing)
    zones = (audience_zones(Filter.of_mailing(mailing), source) if window is not None or days is not None
             else [])
    return spreading.spans(max(get("start_at"), now or utcnow()), get("end_at"), window, days, zones)


def materialize(mailing, now, client_cond=None):
    """One pending message per matching client not on the stop list, in one INSERT ... SELECT
    (duplicates ignored); a spread mailing's spread over the time it has (domain.spread)."""
    now = to_naive_utc(now)
    cond = (audience_filter(mailing.audience_filter, mailing.source, now)
            & Client.phone.not_in(OptOut.select(OptOut.phone)))
    if client_cond is not None:
        cond &= client_cond
    if mailing.spread and client_cond is None:  # its start: the due times in the same statement
        audience = Client.select(Client.id, Client.phone, Client.tz).where(cond).order_by(Client.id)
        added = counts.inserting_pending(mailing.id, lambda: spreading.insert_spread(mailing, now, audience))
        if added is not None:
            return added
    # In client id order: the (mailing, client) index then grows at its end. Unordered, SQLite reads
    # the phone index (it covers id and phone) and scatters the inserts: twice as slow.
    select = (Client.select(pw.Value(mailing.id), Client.id, Client.phone, pw.Value(PENDING),
                            pw.Value(now), pw.Value(now), pw.Value(0), pw.Value(""))
              .where(cond).order_by(Client.id))
    columns = [Message.mailing, Message.client_id, Message.phone, Message.status, Message.created_at,
               Message.next_attempt_at, Message.attempts, Message.last_error]
    # Clients attached to a running spread mailing (ids above the last one now) are spread over
    # what is left.
    after = None
    if mailing.spread:
        after = Message.select(pw.fn.MAX(Message.id)).scalar() or 0
    added = counts.inserting_pending(
        mailing.id, lambda: Message.insert_from(select, columns).on_conflict_ignore().as_rowcount().execute())
    if mailing.spread and added:
        spreading.spread_pending(mailing, now, after_id=after)
    return added


def attach_new_clients(client_cond, now=None):
    """Give clients just added or changed the message of every running or paused mailing they match."""
    now = now or utcnow()
    live = Mailing.select().where(Mailing.state.in_([RUNNING, PAUSED]) & (Mailing.end_at > now))
    return sum(materialize(mailing, now, client_cond) for mailing in live)




# ---------------------------------------------------------------------------------------------------
# Personal texts (domain.templates): what the placeholders render to over an audience, set-based


def _rendered_value(key, default):
    """The SQL expression of what placeholder `key` renders to for a client (its default when the
    value is missing or empty)."""
    if key == templates.NAME:
        value = Client.name
    else:
        attr = key[len(templates.ATTR):]  # [a-z0-9_]+ (templates.PLACEHOLDER_RE): safe in a path
        if db.param == "?":  # SQLite
            value = pw.fn.json_extract(Client.attrs, f'$."{attr}"')
        else:  # PostgreSQL: the JSON text read as jsonb
            value = pw.NodeList((Client.attrs.cast("jsonb"), pw.SQL("->>"), pw.Value(attr)), glue=" ")
    if default:
        return pw.fn.COALESCE(pw.fn.NULLIF(value, ""), default)
    return value


# A value with a character outside these (plain ASCII letters, digits and most punctuation, all one
# GSM-7 septet) may make the text UCS-2, or take two septets: counted as wide.
PLAIN_GLOB, PLAIN_REGEX = "*[^ -Z_a-z]*", "[^ -Z_a-z]"
# A character beyond U+FFFF (most emoji) is two UTF-16 units on the phone: one such makes a value's
# units counted from its bytes (below), an upper bound.
ASTRAL_GLOB, ASTRAL_REGEX = "*[\U00010000-\U0010FFFF]*", r"[\U00010000-\U0010FFFF]"


def _units(value):
    """The SQL of a value's length in UTF-16 units, or more: its characters, and for a value with a
    character beyond U+FFFF a third of its UTF-8 bytes beyond one a character (such a character is
    4 bytes and 2 units, so there are at most that many of them)."""
    if db.param == "?":  # SQLite
        astral, octets = pw.Expression(value, "GLOB", ASTRAL_GLOB), pw.fn.LENGTH(value.cast("BLOB"))
    else:
        astral, octets = pw.Expression(value, "~", ASTRAL_REGEX), pw.fn.OCTET_LENGTH(value)
    chars = pw.fn.LENGTH(value)
    return pw.Case(None, [(astral, chars + (octets - chars) / 3)], chars), astral


def value_profile(text, flt=None, source=None):
    """{(key, default): templates.ValueStats} of a personal text's placeholders over the audience of
    a filter: one aggregate query (the longest rendered value of each in UTF-16 units, at most, and
    whether any is wide), never a loop over the clients. {} for a text that names nothing."""
    template = templates.compile_text(text)
    if not template.personal:
        return {}
    keys = template.placeholders
    columns = []
    for key, default in keys:
        value = _rendered_value(key, default)
        wide = (pw.Expression(value, "GLOB", PLAIN_GLOB) if db.param == "?"
                else pw.Expression(value, "~", PLAIN_REGEX))
        units, astral = _units(value)
        columns += [pw.fn.MAX(units), pw.fn.MAX(pw.Case(None, [(wide, 1)], 0)),
                    pw.fn.MAX(pw.Case(None, [(astral, 1)], 0))]
    found = Client.select(*columns).where(audience_filter(flt, source)).tuples().first()
    found = found or (None,) * len(columns)
    profile = {}
    for i, (key, default) in enumerate(keys):
        longest, wide, astral = found[3 * i:3 * i + 3]
        if longest is None:  # nobody in the audience (or nobody has it, and no default)
            longest = segments.count(default or "").units
            wide = any(c not in segments.GSM7_BASIC for c in default or "")
            astral = any(ord(c) > 0xFFFF for c in default or "")
        profile[(key, default)] = templates.ValueStats(int(longest), bool(wide), bool(astral))
    return profile


def unheld_placeholder(text, profile, flt=None):
    """Why a personal text cannot be saved for this audience: a placeholder without a default that
    no client of it has a value for would send every one of them its text without it (a typo like
    {attr.ctiy} would send nothing at all); None when each renders for someone, or while the
    audience is empty (clients may come)."""
    template = templates.compile_text(text)
    unheld = [p for p in template.parts if not isinstance(p, str) and p.default is None
              and not profile.get((p.key, p.default), templates.ValueStats(0, False)).longest]
    if not unheld or not matching_count(flt):
        return None
    return (f"no client the filter matches has a value for {unheld[0].source}: give it a default "
            f"({unheld[0].source[:-1]}|…}}) or check its name")


def text_segments(text, flt=None, source=None):
    """The SMS parts of a mailing's text: a personal text's longest rendering over the audience the
    filter has now (an upper bound: templates.longest_rendering)."""
    template = templates.compile_text(text)
    if not template.personal:
        return segments.count(template.static)
    return templates.worst_segments(text, value_profile(text, flt, source))


def sample_client(flt=None, source=None):
    """The first client of a filter's audience (lowest id), for a personal text's preview; None when
    it has nobody."""
    return (Client.select().where(audience_filter(flt, source))
            .order_by(Client.id).first())
