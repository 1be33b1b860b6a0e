"""A mailing's audience filter (issue 13, part 1): operator codes any of, tags any of, all of and none
of, and a frequency cap (leave out the clients messaged by any mailing in the last N hours).

A client has several tags (the `client_tags` table, its first one also in `client.tag`). The filter is
stored on the mailing as JSON (`mailing.audience`); a mailing saved before it has only the
`operator` and `tag` columns, read as one operator and one tag. Every statement is set-based: tags
through the (tag, client_id) index or the (client_id, tag) key, the frequency cap through the journal's
client index (attempt.client_id), never a pass over messages."""
import datetime as dt
import json
import re
from dataclasses import dataclass

import peewee as pw

from domain.validation import ValidationError, quote_value, validate_operator, validate_tag
from domain.vocabulary import SENT, UNKNOWN

# The journal's outcomes that say a message may have reached the phone: "messaged".
MESSAGED = (SENT, UNKNOWN)
MAX_SKIP_RECENT = 365 * 86400
_DURATION = re.compile(r"([0-9]+)\s*([mhdw]?)")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800, "": 3600}


@dataclass(frozen=True)
class Filter:
    """Who a mailing reaches: every client when empty. Each list is kept in the order given, once."""
    operators: tuple = ()
    tags: tuple = ()       # any of
    all_tags: tuple = ()   # all of
    not_tags: tuple = ()   # none of
    skip_recent: int | None = None  # seconds: leave out clients messaged within this long

    def __bool__(self):
        return bool(self.operators or self.tags or self.all_tags or self.not_tags or self.skip_recent)

    # -- reading and writing ------------------------------------------------------------------------

    @classmethod
    def of(cls, operator=None, tag=None, all_tags=None, not_tags=None, skip_recent=None):
        """From values already checked (the columns' or the JSON's): a code or a list of codes, etc."""
        return cls(_tuple(operator), _tuple(tag), _tuple(all_tags), _tuple(not_tags),
                   int(skip_recent) if skip_recent else None)

    @classmethod
    def of_mailing(cls, mailing):
        """The filter of a Mailing, or of a dict of its columns (clean_mailing's row)."""
        get = mailing.get if isinstance(mailing, dict) else lambda name: getattr(mailing, name, None)
        stored = get("audience")
        if stored:
            data = json.loads(stored)
            return cls.of(data.get("operators"), data.get("tags"), data.get("all_tags"), data.get("not_tags"),
                          data.get("skip_recent"))
        return cls.of(get("operator"), get("tag"))

    def columns(self):
        """The Mailing columns that hold it: the JSON, and `operator` / `tag` when it names exactly one
        (what a reader of those columns alone understood before)."""
        data = {k: list(v) for k, v in (("operators", self.operators), ("tags", self.tags),
                                        ("all_tags", self.all_tags), ("not_tags", self.not_tags)) if v}
        if self.skip_recent:
            data["skip_recent"] = self.skip_recent
        return {"audience": json.dumps(data, ensure_ascii=False, sort_keys=True) if data else None,
                "operator": self.operators[0] if len(self.operators) == 1 else None,
                "tag": self.tags[0] if len(self.tags) == 1 else None}

    def as_dict(self):
        """The command line's JSON."""
        return {"operators": list(self.operators), "tags": list(self.tags), "all_tags": list(self.all_tags),
                "not_tags": list(self.not_tags), "skip_recent": format_duration(self.skip_recent)}

    def describe(self, empty="everyone", short=False):
        """'operator 900 or 916, tag vip or new, tags all of a, b, not tag x, not messaged in 24h';
        `empty` for no filter; `short` for a table's column: 'op 900,916 tag vip,new all a+b not x
        skip 24h'. Tags as typed (the caller shows it literally)."""
        if short:
            parts = (f"op {','.join(self.operators)}" if self.operators else "",
                     f"tag {','.join(self.tags)}" if self.tags else "",
                     f"all {'+'.join(self.all_tags)}" if self.all_tags else "",
                     f"not {','.join(self.not_tags)}" if self.not_tags else "",
                     f"skip {format_duration(self.skip_recent)}" if self.skip_recent else "")
            return " ".join(p for p in parts if p) or empty
        parts = []
        if self.operators:
            parts.append("operator " + " or ".join(self.operators))
        if self.tags:
            parts.append("tag " + " or ".join(self.tags))
        if self.all_tags:
            parts.append("tags all of " + ", ".join(self.all_tags))
        if self.not_tags:
            parts.append("not tag " + " or ".join(self.not_tags))
        if self.skip_recent:
            parts.append(f"not messaged in {format_duration(self.skip_recent)}")
        return ", ".join(parts) or empty

    def key(self):
        """A sort key (filters are counted in a stable order)."""
        return (self.operators, self.tags, self.all_tags, self.not_tags, self.skip_recent or 0)

    # -- the SQL ------------------------------------------------------------------------------------

    def cond(self, now=None, besides=None):
        """The condition on `client` (peewee): operators by the (operator, tag) index, tags any of from
        the (tag, client_id) index, all of as clients holding every one (GROUP BY ... HAVING), none of
        and the frequency cap as NOT EXISTS probes by the client's id. The cap leaves out the messages
        of mailing `besides` (a resend's original: its messages are what the resend sends again, so
        counting them would leave a resend of those in doubt with nobody)."""
        from models import Attempt, Client, ClientTag
        cond = pw.SQL("1 = 1")
        if self.operators:
            cond &= (Client.operator == self.operators[0] if len(self.operators) == 1
                     else Client.operator.in_(list(self.operators)))
        if self.tags:
            cond &= Client.id.in_(ClientTag.select(ClientTag.client_id).where(_tag_in(ClientTag, self.tags)))
        if self.all_tags:
            holders = ClientTag.select(ClientTag.client_id).where(_tag_in(ClientTag, self.all_tags))
            if len(self.all_tags) > 1:
                holders = (holders.group_by(ClientTag.client_id)
                           .having(pw.fn.COUNT(pw.SQL("*")) == len(self.all_tags)))
            cond &= Client.id.in_(holders)
        if self.not_tags:
            tagged = ClientTag.select(pw.SQL("1")).where((ClientTag.client_id == Client.id)
                                                         & _tag_in(ClientTag, self.not_tags))
            cond &= ~pw.fn.EXISTS(tagged)
        if self.skip_recent:
            from domain.times import utcnow
            since = (now or utcnow()) - dt.timedelta(seconds=self.skip_recent)
            messaged = Attempt.select(pw.SQL("1")).where(
                (Attempt.client_id == Client.id) & (Attempt.at >= since) & Attempt.outcome.in_(list(MESSAGED)))
            if besides is not None:
                messaged = messaged.where(Attempt.mailing_id != besides)
            cond &= ~pw.fn.EXISTS(messaged)
        return cond


def _tag_in(model, tags):
    return model.tag == tags[0] if len(tags) == 1 else model.tag.in_(list(tags))


def _tuple(value):
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(dict.fromkeys(v for v in value if v))


# ---------------------------------------------------------------------------------------------------
# What an operator types


def split_list(values, split=","):
    """A list from what was typed: a string split on commas, or a list (a flag given again) whose
    items are kept whole unless `split` (then each is split too). Blank items dropped."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
        split = split or ","
    out = []
    for value in values:
        for item in (str(value).split(split) if split else [str(value)]):
            if item.strip():
                out.append(item.strip())
    return out


def parse_duration(value, field="skip_recent"):
    """'24h', '90m', '2d', '1w', '36' (hours) -> seconds; '', '0', 'off', 'no' -> None."""
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "0", "off", "no", "none", "-"):
        return None
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValidationError({field: f"must be a duration like 24h, 90m, 2d or 1w; got {quote_value(value)}"})
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_SKIP_RECENT:
        raise ValidationError({field: f"must be between 1m and 365d; got {quote_value(value)}"})
    return seconds


def format_duration(seconds):
    """86400 -> '24h', 5400 -> '90m', 172800 -> '48h', 604800 -> '7d'; None -> None."""
    if not seconds:
        return None
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds % size == 0 and (unit != "d" or seconds >= 7 * 86400):
            return f"{seconds // size}{unit}"
    return f"{seconds // 60}m"


def clean_filter(operators=None, tags=None, all_tags=None, not_tags=None, skip_recent=None, check_known=True):
    """Validate a filter as typed -> Filter, or ValidationError naming each field (`operator`, `tag`,
    `all_tags`, `not_tags`, `skip_recent`). A string is a comma list; a list (a repeated flag) keeps
    its items whole, except all_tags, whose items are comma lists too (`--all-tags a,b`). With
    `check_known`, an operator code or a tag that no client has is refused (a typo reaches nobody)."""
    errors, values = {}, {}
    for field, given, split, check in (
            ("operator", operators, ",", validate_operator),
            ("tag", tags, None, validate_tag),
            ("all_tags", all_tags, ",", validate_tag),
            ("not_tags", not_tags, None, validate_tag)):
        try:
            values[field] = tuple(dict.fromkeys(check(v, field) for v in split_list(given, split)))
        except ValidationError as exc:
            errors.update(exc.errors)
    try:
        values["skip_recent"] = parse_duration(skip_recent)
    except ValidationError as exc:
        errors.update(exc.errors)
    if check_known and not errors:
        errors.update(unknown_values(values))
    if errors:
        raise ValidationError(errors)
    return Filter(values["operator"], values["tag"], values["all_tags"], values["not_tags"], values["skip_recent"])


def unknown_values(values):
    """{field: why} for the operator codes and tags no client has."""
    from models import Client, ClientTag
    errors = {}
    for field, column in (("operator", Client.operator), ("tag", ClientTag.tag), ("all_tags", ClientTag.tag),
                          ("not_tags", ClientTag.tag)):
        missing = [v for v in values.get(field, ()) if not column.model.select().where(column == v).exists()]
        if missing:
            name = "operator" if field == "operator" else "tag"
            known = [v for (v,) in column.model.select(column).distinct().order_by(column).limit(8).tuples() if v]
            errors[field] = (f"no client has {name} {', '.join(map(repr, missing))}"
                             + (f"; known: {', '.join(known)}" if known else ""))
    return errors
