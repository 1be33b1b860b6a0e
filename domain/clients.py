"""The client directory: adding, editing and deleting clients, and CSV import and export.

A client added or changed while a mailing is sending gets that mailing's message if it matches."""
import csv
import json
import re
from pathlib import Path

import peewee as pw

from domain.csv_files import ImportReport, read_csv_file
from domain.templates import dump_attrs, load_attrs
from domain.mailings import attach_new_clients
from domain.states import close_unsent
from domain.times import operator_zone, utcnow
from domain.validation import (ATTR_KEY_RE, MAX_ATTR_VALUE, MAX_ATTRS, MAX_NAME, MAX_TAG, PHONE_RE,
                               ValidationError, known_zones, validate_attr_key, validate_attrs,
                               validate_name, validate_operator, validate_phone, validate_tag, validate_tz)
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


IMPORT_BATCH = 50_000


def import_header(header):
    """The columns of an import's header line, checked: (lower-cased names, [(attribute key, column
    index)] in key order). phone is required; operator, tag, tz, tags and name are read as such; any other
    column is an attribute of that name (a-z, 0-9 and _)."""
    header = [h.strip().lower() for h in header]
    if "phone" not in header:
        raise ValidationError({"file": f"header must have a phone column (and any of operator, tag, tz, "
                                       f"tags, name, or attributes); got {','.join(header)}"})
    for name in header:
        if name not in KNOWN_COLUMNS:
            try:
                validate_attr_key(name, "file")
            except ValidationError:
                raise ValidationError({"file": f"column {name!r} is neither phone, operator, tag, tz, tags "
                                               f"nor name, nor an attribute key (1-32 of a-z, 0-9 and _)"}) from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValidationError({"file": f"column {repeated[0]!r} appears twice in the header"})
    attrs = sorted((name, i) for i, name in enumerate(header) if name not in KNOWN_COLUMNS)
    if len(attrs) > MAX_ATTRS:
        raise ValidationError({"file": f"{len(attrs)} attribute columns; at most {MAX_ATTRS}"})
    return header, attrs


def import_clients(source, all_or_nothing=False):
    """Import a CSV (header phone,operator,tag,tz,tags,name: phone and any of the others, in any
    order, any other column an attribute; tags: more tags, ';'-separated). Good rows go in, each bad
    row is reported with its line number; with all_or_nothing a single bad row imports nothing."""
    if isinstance(source, (str, Path)):
        return read_csv_file(source, lambda fh: import_clients(fh, all_or_nothing))
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        raise ValidationError({"file": "is empty; expected a header line phone,operator,tag,tz"})
    header, attr_cols = import_header(header)
    col = {name: header.index(name) for name in header}
    i_phone, i_operator, i_tag, i_tz, i_tags = (col.get(name) for name in CSV_HEADER)
    i_name = col.get("name")
    extra = {}  # phone -> its tags after the first (the `tags` column), for client_tags
    # With a name or attributes, each row carries (name, attrs as JSON) too; without, the insert is
    # what it always was (the columns' defaults).
    personal = i_name is not None or bool(attr_cols)
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # keys come sorted
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
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line (one at the end of a file is common): not a row
        total += 1
        line_no = reader.line_num
        if not "".join(fields).strip():  # ",,,": a row with every value missing is counted, and refused
            rejected.append((line_no, ",".join(fields), "is an empty row (no phone, no other value)"))
            continue
        if len(fields) != width:
            rejected.append((line_no, ",".join(fields), f"has {len(fields)} fields, expected {width}"))
            continue
        phone = fields[i_phone].strip()
        operator = fields[i_operator].strip() if i_operator is not None else ""
        tag = fields[i_tag].strip() if i_tag is not None else ""
        tz = fields[i_tz].strip() if i_tz is not None else ""
        more = fields[i_tags] if i_tags is not None else ""
        listed = None
        if more:  # the first tag is `tag`, else the first listed; each once
            listed = list(dict.fromkeys(([tag] if tag else [])
                                        + [t for t in (x.strip() for x in more.split(";")) if t]))
        more_tags = None
        fine = True
        if personal:
            name = fields[i_name].strip() if i_name is not None else ""
            attrs = {}
            for key, i in attr_cols:
                value = fields[i].strip()
                if value:
                    attrs[key] = value
                    fine = fine and len(value) <= MAX_ATTR_VALUE and value.isprintable()
            fine = fine and len(name) <= MAX_NAME and name.isprintable()
        # Fast path for well-formed rows; the full validator explains the others.
        # (isdigit() alone takes '²' or '٩': isascii() keeps the fast path to the digits 0-9.)
        if (fine and phone_ok(phone) and (not operator or (len(operator) == 3 and operator.isascii()
                                                           and operator.isdigit()))
                and len(tag) <= MAX_TAG and (not tz or tz in zones) and tag.isprintable()
                and (not listed or all(len(t) <= MAX_TAG and t.isprintable() for t in listed))):
            if listed:
                tag, more_tags = listed[0], listed[1:]
            row = (phone, operator or phone[1:4], tag, tz or default_tz, now)
            if personal:
                row += (name, encode(attrs) if attrs else "{}")
        else:
            try:
                c = clean_client(phone, operator, tag, tz or default_tz, more,
                                 *((name, attrs) if personal else ()))
            except ValidationError as exc:
                rejected.append((line_no, ",".join(fields), str(exc)))
                continue
            row = (c["phone"], c["operator"], c["tag"], c["tz"], now)
            if personal:
                row += (c["name"], c["attrs"])
            more_tags = c["tags"][1:]
        first = seen.setdefault(row[0], line_no)
        if first != line_no:
            rejected.append((line_no, ",".join(fields), f"phone: {row[0]} repeats line {first}"))
            continue
        rows.append(row)
        if more_tags:
            extra[row[0]] = more_tags
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
        columns = "phone, operator, tag, tz, created_at" + (", name, attrs" if personal else "")
        sql = (f"INSERT INTO client ({columns}) "
               f"VALUES ({', '.join([db.param] * (7 if personal else 5))})")
        cursor = db.cursor()
        for i in range(0, len(rows), IMPORT_BATCH):
            cursor.executemany(sql, rows[i:i + IMPORT_BATCH])
        _insert_tags(before, extra)  # (a phone already a client is not among the new rows it reads)
        attach_new_clients(Client.id > before)
    return ImportReport(len(rows), rejected, total)


def _insert_tags(before, extra):
    """The tags of the clients just imported (ids above `before`): their first tags in one INSERT ...
    SELECT from `client`; the others (`extra`: phone -> tags) by the ids read back for their phones."""
    db.execute_sql(f"INSERT INTO client_tags (client_id, tag) SELECT id, tag FROM client "
                   f"WHERE id > {db.param} AND tag <> '' ORDER BY id", (before,))
    if not extra:
        return
    # One pass over the new rows (by the primary key) rather than a lookup per phone.
    pairs = [(client_id, tag) for phone, client_id in
             db.execute_sql(f"SELECT phone, id FROM client WHERE id > {db.param} ORDER BY id", (before,))
             if phone in extra for tag in extra[phone]]
    sql = f"INSERT INTO client_tags (client_id, tag) VALUES ({db.param}, {db.param})"
    cursor = db.cursor()
    for i in range(0, len(pairs), IMPORT_BATCH):
        cursor.executemany(sql, pairs[i:i + IMPORT_BATCH])


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

