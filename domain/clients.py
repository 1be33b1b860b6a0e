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
from models import Client, Message, db

CSV_HEADER = ("phone", "operator", "tag", "tz")
# Columns an import reads as themselves; any other column is an attribute of that name (personal
# texts: {attr.city}). `tags` is kept for the several tags a client may have (issue 13, part 1).
KNOWN_COLUMNS = CSV_HEADER + ("tags", "name")


def clean_client(phone, operator=None, tag="", tz=None, name="", attrs=None):
    """Validate one client's fields; returns a dict ready to insert (attrs as their JSON text).
    Collects every field's error."""
    errors, row = {}, {}
    for field, check in (("phone", lambda: validate_phone(phone)),
                         ("tag", lambda: validate_tag(tag)),
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


def create_client(phone, operator=None, tag="", tz=None, name="", attrs=None):
    row = clean_client(phone, operator, tag, tz, name, attrs)
    with db.atomic():
        if Client.select().where(Client.phone == row["phone"]).exists():
            raise ValidationError({"phone": f"{row['phone']} is already a client"})
        client = Client.create(**row)
        attach_new_clients(Client.id == client.id)
    return client


def edit_client(client_id, **changes):
    """Change the fields given (not None); `attrs`: {key: value} set, a key given "" removed, the
    others kept."""
    client = get_client(client_id)
    merged = {"phone": client.phone, "operator": client.operator, "tag": client.tag, "tz": client.tz,
              "name": client.name}
    merged.update({k: v for k, v in changes.items() if v is not None and k != "attrs"})
    merged["attrs"] = {**load_attrs(client.attrs), **(changes.get("attrs") or {})}
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
        close_unsent(Message.client_id.in_(ids), CANCELLED, "client deleted")
        # One pass over the messages (there is no index by client): they keep their phone.
        Message.update(client_id=None).where(Message.client_id.in_(ids)).execute()
        return Client.delete().where(Client.id.in_(ids)).execute()


def client_query(search=""):
    """Clients matching a free-text filter on phone, operator, tag or zone, newest first."""
    query = Client.select().order_by(Client.id.desc())
    search = (search or "").strip()
    if search:
        cond = (Client.phone.contains(search) | Client.tag.contains(search) | Client.tz.contains(search)
                | Client.name.contains(search))
        if re.fullmatch(r"\d{3}", search):
            cond |= Client.operator == search
        query = query.where(cond)
    return query


IMPORT_BATCH = 50_000


def import_header(header):
    """The columns of an import's header line, checked: (lower-cased names, [(attribute key, column
    index)] in key order). phone is required; name, operator, tag and tz are read as such; any other
    column is an attribute of that name (a-z, 0-9 and _)."""
    header = [h.strip().lower() for h in header]
    if "phone" not in header:
        raise ValidationError({"file": f"header must have a phone column (and any of operator, tag, tz, "
                                       f"name, or attributes); got {','.join(header)}"})
    for name in header:
        if name not in KNOWN_COLUMNS:
            try:
                validate_attr_key(name, "file")
            except ValidationError:
                raise ValidationError({"file": f"column {name!r} is neither phone, operator, tag, tz nor "
                                               f"name, nor an attribute key (1-32 of a-z, 0-9 and _)"}) from None
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValidationError({"file": f"column {repeated[0]!r} appears twice in the header"})
    if "tags" in header:
        raise ValidationError({"file": "column 'tags' (several tags a client) is not read by this version"})
    attrs = sorted((name, i) for i, name in enumerate(header) if name not in KNOWN_COLUMNS)
    if len(attrs) > MAX_ATTRS:
        raise ValidationError({"file": f"{len(attrs)} attribute columns; at most {MAX_ATTRS}"})
    return header, attrs


def import_clients(source, all_or_nothing=False):
    """Import a CSV (header phone,operator,tag,tz, and name and attribute columns). Good rows go in,
    each bad row is reported with its line number; with all_or_nothing a single bad row imports
    nothing."""
    if isinstance(source, (str, Path)):
        return read_csv_file(source, lambda fh: import_clients(fh, all_or_nothing))
    reader = csv.reader(source)
    header = next(reader, None)
    if header is None:
        raise ValidationError({"file": "is empty; expected a header line phone,operator,tag,tz"})
    header, attr_cols = import_header(header)
    col = {name: header.index(name) for name in header}
    i_phone, i_operator, i_tag, i_tz = (col.get(name) for name in CSV_HEADER)
    i_name = col.get("name")
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
                and len(tag) <= MAX_TAG and (not tz or tz in zones) and tag.isprintable()):
            row = (phone, operator or phone[1:4], tag, tz or default_tz, now)
            if personal:
                row += (name, encode(attrs) if attrs else "{}")
        else:
            try:
                c = clean_client(phone, operator, tag, tz or default_tz,
                                 *((name, attrs) if personal else ()))
            except ValidationError as exc:
                rejected.append((line_no, ",".join(fields), str(exc)))
                continue
            row = (c["phone"], c["operator"], c["tag"], c["tz"], now)
            if personal:
                row += (c["name"], c["attrs"])
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
        columns = "phone, operator, tag, tz, created_at" + (", name, attrs" if personal else "")
        sql = (f"INSERT INTO client ({columns}) "
               f"VALUES ({', '.join([db.param] * (7 if personal else 5))})")
        cursor = db.cursor()
        for i in range(0, len(rows), IMPORT_BATCH):
            cursor.executemany(sql, rows[i:i + IMPORT_BATCH])
        attach_new_clients(Client.id > before)
    return ImportReport(len(rows), rejected, total)


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
    """The directory as CSV an import takes back: phone,operator,tag,tz,name and a column per
    attribute key any client has (empty for a client without it)."""
    writer = csv.writer(out, lineterminator="\n")
    keys = attribute_keys()
    writer.writerow(CSV_HEADER + ("name",) + tuple(keys))
    query = (Client.select(Client.phone, Client.operator, Client.tag, Client.tz, Client.name, Client.attrs)
             .order_by(Client.id))
    for *row, attrs in query.tuples().iterator():
        if keys:
            found = load_attrs(attrs)
            row += [found.get(k, "") for k in keys]
        writer.writerow(row)

