"""The client directory: adding, editing and deleting clients, and CSV export (import: client_import).

A client added or changed while a mailing is sending gets that mailing's message if it matches."""
import csv
import re

from domain.templates import dump_attrs, load_attrs
from domain.mailings import attach_new_clients
from domain.states import close_unsent
from domain.times import operator_zone
from domain.validation import (ATTR_KEY_RE, ValidationError, validate_attrs, validate_name, validate_operator,
                               validate_phone, validate_tag, validate_tz)
from domain.vocabulary import CANCELLED, PENDING
from models import Client, ClientTag, Message, db

# `tags` (issue 13): more tags, ';'-separated; a file without it reads as before.
CSV_HEADER = ("phone", "operator", "tag", "tz", "tags")
TAG_SEPARATOR = ";"
# Columns an import reads as themselves; any other column is an attribute of that name (personal
# texts: {attr.city}).
KNOWN_COLUMNS = CSV_HEADER + ("name",)


def clean_tags(tag="", tags=None):
    """A client's tags -> a list, each once, its first (client.tag) first: `tag` (one tag, or a list
    of them: `--tag` given again), then `tags` (a ';'-separated string, or a list). Only the first
    may contain a ';' (a tag from before there were several): the others could not be read back
    from the CSV's `tags` column."""
    first = [tag] if tag is None or isinstance(tag, str) else list(tag)
    more = (tags.split(TAG_SEPARATOR) if isinstance(tags, str) else list(tags or ()))
    values, errors = [], {}
    for i, (field, value) in enumerate([("tag", v) for v in first] + [("tags", v) for v in more]):
        try:
            value = validate_tag(value, field)
        except ValidationError as exc:
            errors.update(exc.errors)
            continue
        if value and values and TAG_SEPARATOR in value:
            errors[field] = f"{value!r} contains {TAG_SEPARATOR!r}, which separates tags"
        if value:
            values.append(value)
    if errors:
        raise ValidationError(errors)
    return list(dict.fromkeys(values))


def clean_client(phone, operator=None, tag="", tz=None, tags=None, name="", attrs=None):
    """Validate one client's fields; returns a dict ready to insert (attrs as their JSON text), with
    its `tags` (clean_tags: the first is `tag`) to take out before. Collects every field's error."""
    errors, row = {}, {}
    for field, check in (("phone", lambda: validate_phone(phone)),
                         ("tags", lambda: clean_tags(tag, tags)),
                         ("tz", lambda: validate_tz(tz) if tz else operator_zone()),
                         ("name", lambda: validate_name(name)),
                         ("attrs", lambda: dump_attrs(validate_attrs(attrs)))):
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
    if "tags" in row:
        row["tag"] = row["tags"][0] if row["tags"] else ""
    return row


def parse_attr_lines(text, field="attr"):
    """Attributes as an operator types them, one `key=value` a line (blank lines skipped) -> {key:
    value}; the keys and values are checked by clean_client."""
    attrs = {}
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValidationError({field: f"each line is key=value, like city=Omsk; got {line.strip()[:40]!r}"})
        attrs[key.strip()] = value.strip()
    return attrs


def set_tags(client_id, tags):
    """Make these the client's tags (in a transaction of the caller's)."""
    ClientTag.delete().where(ClientTag.client_id == client_id).execute()
    if tags:
        ClientTag.insert_many([(client_id, t) for t in tags], [ClientTag.client_id, ClientTag.tag]).execute()


def client_tags(ids):
    """{client id: [tags]} of these clients (one query per 500), each one's first tag first."""
    ids = list(ids)
    found = {}
    for i in range(0, len(ids), 500):
        query = (ClientTag.select(ClientTag.client_id, ClientTag.tag, Client.tag)
                 .join(Client, on=(Client.id == ClientTag.client_id))
                 .where(ClientTag.client_id.in_(ids[i:i + 500])).order_by(ClientTag.client_id, ClientTag.tag))
        for client_id, tag, first in query.tuples():
            tags = found.setdefault(client_id, [])
            tags.insert(0, tag) if tag == first else tags.append(tag)
    return found


def create_client(phone, operator=None, tag="", tz=None, tags=None, name="", attrs=None):
    row = clean_client(phone, operator, tag, tz, tags, name, attrs)
    tag_list = row.pop("tags")
    with db.atomic():
        if Client.select().where(Client.phone == row["phone"]).exists():
            raise ValidationError({"phone": f"{row['phone']} is already a client"})
        client = Client.create(**row)
        set_tags(client.id, tag_list)
        attach_new_clients(Client.id == client.id)
    return client


def edit_client(client_id, **changes):
    """Change the fields given (not None); `tag` and `tags` given (either) replace all its tags;
    `attrs`: {key: value} set, a key given "" removed, the others kept."""
    client = get_client(client_id)
    merged = {"phone": client.phone, "operator": client.operator, "tz": client.tz,
              "tag": client_tags([client.id]).get(client.id, []), "name": client.name}
    if changes.get("tag") is not None or changes.get("tags") is not None:
        merged["tag"] = changes.pop("tag", None) or ""
    merged.update({k: v for k, v in changes.items() if v is not None and k != "attrs"})
    merged["attrs"] = {**load_attrs(client.attrs), **(changes.get("attrs") or {})}
    if "phone" in changes and "operator" not in changes and changes["phone"] is not None:
        merged["operator"] = None  # follow the new phone's code
    row = clean_client(**merged)
    tag_list = row.pop("tags")
    with db.atomic():
        clash = Client.select().where((Client.phone == row["phone"]) & (Client.id != client.id))
        if clash.exists():
            raise ValidationError({"phone": f"{row['phone']} is already a client"})
        Client.update(**row).where(Client.id == client.id).execute()
        set_tags(client.id, tag_list)
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
        close_unsent(Message.client_id.in_(ids), CANCELLED, "client deleted")
        # One pass over the messages (there is no index by client): they keep their phone.
        Message.update(client_id=None).where(Message.client_id.in_(ids)).execute()
        ClientTag.delete().where(ClientTag.client_id.in_(ids)).execute()
        return Client.delete().where(Client.id.in_(ids)).execute()


def client_query(search=""):
    """Clients matching a free-text filter on phone, operator, tag or zone, newest first."""
    query = Client.select().order_by(Client.id.desc())
    search = (search or "").strip()
    if search:
        cond = (Client.phone.contains(search) | Client.tag.contains(search) | Client.tz.contains(search)
                | Client.name.contains(search)
                | Client.id.in_(ClientTag.select(ClientTag.client_id).where(ClientTag.tag.contains(search))))
        if re.fullmatch(r"\d{3}", search):
            cond |= Client.operator == search
        query = query.where(cond)
    return query


def attribute_keys():
    """Every attribute key some client has, sorted (from the database's JSON functions)."""
    if db.param == "?":  # SQLite
        sql = "SELECT DISTINCT j.key FROM client, json_each(client.attrs) AS j WHERE client.attrs != '{}'"
    else:
        sql = "SELECT DISTINCT jsonb_object_keys(attrs::jsonb) FROM client WHERE attrs != '{}'"
    return sorted(k for (k,) in db.execute_sql(sql).fetchall() if ATTR_KEY_RE.fullmatch(k))


def export_clients(out):
    """The directory as CSV an import takes back: phone,operator,tag,tz,tags,name and a column per
    attribute key any client has (empty for a client without it). `tags` holds its tags after the
    first, read beside the clients in the same (client id) order, both streamed."""
    writer = csv.writer(out, lineterminator="\n")
    keys = attribute_keys()
    writer.writerow(CSV_HEADER + ("name",) + tuple(keys))
    query = (Client.select(Client.id, Client.phone, Client.operator, Client.tag, Client.tz, Client.name,
                           Client.attrs).order_by(Client.id))
    tags = iter(ClientTag.select(ClientTag.client_id, ClientTag.tag)
                .order_by(ClientTag.client_id, ClientTag.tag).tuples().iterator())
    pending = next(tags, None)
    for client_id, phone, operator, tag, tz, name, attrs in query.tuples().iterator():
        more = []
        while pending is not None and pending[0] <= client_id:
            if pending[0] == client_id and pending[1] != tag:
                more.append(pending[1])
            pending = next(tags, None)
        row = [phone, operator, tag, tz, TAG_SEPARATOR.join(more), name]
        if keys:
            found = load_attrs(attrs)
            row += [found.get(k, "") for k in keys]
        writer.writerow(row)

