"""Importing clients from CSV: a million rows in seconds, every row checked, every bad one reported
with its line.

The file is read in chunks. A chunk whose rows are all well formed is checked a column at a time
(`map` over a column runs in C: a phone pattern, printable values, lengths; operators, tags and zones by
their distinct values), and goes into a staging table as it is, by one `executemany` fed with `zip`
of its columns: no Python statement per row. A chunk with anything else (a row of the wrong width, a
blank line, a value the fast checks do not accept, a phone seen before) is read row by row with the
full validators, which say why. The staging table (TEMP, no indexes: it is written fast and touches
no other connection's lock) then goes into `client` by one `INSERT ... SELECT ... ORDER BY phone`
(the unique phone index grows at its end), and the tags into `client_tags` by two more."""
import csv
import itertools
import re
from pathlib import Path

import peewee as pw

from domain.clients import CSV_HEADER, KNOWN_COLUMNS, TAG_SEPARATOR, clean_client
from domain.csv_files import ImportReport, read_csv_file
from domain.mailings import attach_new_clients
from domain.templates import dump_attrs, load_attrs
from domain.times import operator_zone, utcnow
from domain.validation import (MAX_ATTR_VALUE, MAX_ATTRS, MAX_NAME, MAX_TAG, ValidationError, known_zones,
                               validate_attr_key)
from models import Client, db

CHUNK = 50_000
STAGE, TAG_SETS = "import_stage", "import_tag_sets"


def import_header(header):
    """The columns of an import's header line, checked: (lower-cased names, [(attribute key, column
    index)] in key order). phone is required; operator, tag, tz, tags and name are read as such; any
    other column is an attribute of that name (a-z, 0-9 and _)."""
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
    batch = _Import(*import_header(header))
    _create_stage(len(batch.attr_keys))
    try:
        with _staging_transaction():
            batch.read(reader)
        return batch.insert(all_or_nothing)
    finally:
        db.execute_sql(f"DROP TABLE IF EXISTS {STAGE}")
        db.execute_sql(f"DROP TABLE IF EXISTS {TAG_SETS}")
        if isinstance(db.obj, pw.SqliteDatabase):
            db.execute_sql("PRAGMA temp_store = DEFAULT")


def _staging_transaction():
    # SQLite: DEFERRED, so writing the TEMP table takes no lock on the database file (the connection
    # opens IMMEDIATE transactions by default): consumers keep writing while a big file is read.
    if isinstance(db.obj, pw.SqliteDatabase):
        return db.atomic(lock_type="DEFERRED")
    return db.atomic()


def _create_stage(attributes):
    if isinstance(db.obj, pw.SqliteDatabase):
        # the staging table and the sort of the insert in memory (60 MB a million rows), not in a
        # temporary file
        db.execute_sql("PRAGMA temp_store = MEMORY")
    db.execute_sql(f"DROP TABLE IF EXISTS {STAGE}")
    db.execute_sql(f"DROP TABLE IF EXISTS {TAG_SETS}")
    columns = "".join(f", a{i} TEXT" for i in range(attributes))
    # line: the row's line in the file; more: its tags after the first, TAG_SEPARATOR-joined; a<i>:
    # its attributes' values (SQLite builds the JSON), or attrs: their JSON (PostgreSQL)
    db.execute_sql(f"CREATE TEMPORARY TABLE {STAGE} (line INTEGER, phone TEXT, operator TEXT, tag TEXT, "
                   f"tz TEXT, more TEXT DEFAULT '', name TEXT DEFAULT '', attrs TEXT{columns})")
    db.execute_sql(f"CREATE TEMPORARY TABLE {TAG_SETS} (more TEXT, tag TEXT)")


class _Import:
    def __init__(self, header, attr_cols):
        self.width = len(header)
        col = {name: header.index(name) for name in header}
        self.i_phone, self.i_operator, self.i_tag, self.i_tz, self.i_tags = (col.get(n) for n in CSV_HEADER)
        self.i_name = col.get("name")
        self.attr_keys = [key for key, _ in attr_cols]
        self.attr_index = [i for _, i in attr_cols]
        # With a name or attributes the clients get them; without, the insert leaves the columns to
        # their database defaults, as it always did.
        self.personal = self.i_name is not None or bool(attr_cols)
        self.default_tz = operator_zone()
        self.zones = known_zones()
        self.now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
        self.rejected = []
        self.seen = set()       # every phone staged
        self.first_line = {}    # phone -> its line, for the phones read row by row
        self.indexed = False    # the staging table's phone index, made when a repeat needs a line
        self.tag_sets = {}      # (tag cell, tags cell) -> (first tag, `more`), each read once
        self.more_sets = set()  # the `more` values staged, for TAG_SETS
        self.total = 0
        # SQLite writes JSON as json.dumps(..., separators=(",", ":")) does; PostgreSQL's jsonb text
        # has spaces, so there each row's JSON is written here (its import is not the one benchmarked)
        self.json_in_sql = isinstance(db.obj, pw.SqliteDatabase)
        # Only the columns this file has are bound: each bound value costs the executemany time.
        self.columns = ["line", "phone", "operator", "tag", "tz"]
        if self.i_tags is not None:
            self.columns.append("more")
        if self.i_name is not None:
            self.columns.append("name")
        if self.attr_keys:
            self.columns += ([f"a{i}" for i in range(len(self.attr_keys))] if self.json_in_sql else ["attrs"])
        self.stage_sql = (f"INSERT INTO {STAGE} ({', '.join(self.columns)}) "
                          f"VALUES ({', '.join([db.param] * len(self.columns))})")
        self.cursor = db.cursor()

    # -- reading ------------------------------------------------------------------------------------

    def read(self, reader):
        while True:
            start, rows, error = reader.line_num, [], None
            try:
                for row in itertools.islice(reader, CHUNK):
                    rows.append(row)
            except csv.Error as exc:  # a row the csv module cannot read: that row only
                error = (reader.line_num, "", f"cannot be read as CSV: {exc}")
            exhausted = error is None and len(rows) < CHUNK
            if error is None and reader.line_num - start == len(rows):
                lines = range(start + 1, start + 1 + len(rows))  # a row a line
            else:
                lines = _lines_of(rows, start)
            if not all(rows):  # blank lines are no rows
                numbered = [(line, row) for line, row in zip(lines, rows) if row]
                lines, rows = [n[0] for n in numbered], [n[1] for n in numbered]
            if rows and not self._fast(rows, lines):
                self._rows(zip(lines, rows))
            if error is not None:
                self.rejected.append(error)
                self.total += 1
            if exhausted:
                return

    def _fast(self, rows, lines):
        """Stage a chunk (rows, and the line each ends on) checked a column at a time; False (nothing
        staged) when any row needs the full validators."""
        if set(map(len, rows)) != {self.width}:
            return False
        raw = [tuple(map(str.strip, column)) for column in zip(*rows)]
        # every phone 7 and ten ASCII digits: one pattern over the column joined (in C), not a
        # call per value
        phones = raw[self.i_phone]
        joined = _SEP.join(phones)
        if joined.count(_SEP) != len(phones) - 1 or not _PHONES.fullmatch(joined):
            return False
        n = len(rows)
        values = {"line": lines, "phone": phones}
        if self.i_operator is None:
            operators = [p[1:4] for p in phones]
        else:
            operators = raw[self.i_operator]
            distinct = set(operators)
            if not all(o == "" or (len(o) == 3 and o.isascii() and o.isdigit()) for o in distinct):
                return False
            if "" in distinct:  # the phone's own code
                operators = [o or p[1:4] for o, p in zip(operators, phones)]
        values["operator"] = operators
        if self.i_tz is None:
            values["tz"] = itertools.repeat(self.default_tz, n)
        else:
            zones = raw[self.i_tz]
            distinct = set(zones)
            if not distinct - {""} <= self.zones:
                return False
            values["tz"] = [z or self.default_tz for z in zones] if "" in distinct else zones
        tags = raw[self.i_tag] if self.i_tag is not None else itertools.repeat("", n)
        if self.i_tag is not None and not all(len(t) <= MAX_TAG and t.isprintable() for t in set(tags)):
            return False
        if self.i_tags is not None:
            pairs = list(zip(tags, raw[self.i_tags]))
            sets = self.tag_sets
            for pair in set(pairs).difference(sets):
                found = _tag_set(*pair)
                if found is None:
                    return False
                sets[pair] = found
            tags, more = zip(*[sets[pair] for pair in pairs])
            values["more"] = more
        values["tag"] = tags
        if self.i_name is not None:
            if not _printable_within(raw[self.i_name], MAX_NAME):
                return False
            values["name"] = raw[self.i_name]
        attrs = [raw[i] for i in self.attr_index]
        if not all(_printable_within(column, MAX_ATTR_VALUE) for column in attrs):
            return False
        if attrs and self.json_in_sql:
            values.update((f"a{i}", column) for i, column in enumerate(attrs))
        elif attrs:
            keys = self.attr_keys
            values["attrs"] = [dump_attrs({k: v for k, v in zip(keys, row) if v}) for row in zip(*attrs)]
        fresh = set(phones)  # no phone twice in the chunk, none seen before it
        if len(fresh) != n or not self.seen.isdisjoint(fresh):
            return False
        self.seen |= fresh
        if self.i_tags is not None:
            self.more_sets.update(values["more"])
        self.cursor.executemany(self.stage_sql, zip(*(values[c] for c in self.columns)))
        self.total += n
        return True

    def _rows(self, numbered):
        """(line, fields) pairs checked one at a time with the full validators: each bad one is
        reported, the others staged."""
        staged = []
        for line_no, fields in numbered:
            row = self._row(line_no, fields)
            if row is not None:
                staged.append(row)
        self.cursor.executemany(self.stage_sql, staged)

    def _row(self, line_no, fields):
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            return None  # a blank line (one at the end of a file is common): not a row
        self.total += 1
        line_no -= _breaks(fields)  # a record over several lines is told by its first
        raw = ",".join(fields)
        if not raw.replace(",", "").strip():  # ",,,": a row with every value missing is counted, and refused
            self.rejected.append((line_no, raw, "is an empty row (no phone, no other value)"))
            return None
        if len(fields) != self.width:
            self.rejected.append((line_no, raw, f"has {len(fields)} fields, expected {self.width}"))
            return None

        def value(i):
            return fields[i].strip() if i is not None else ""
        try:
            c = clean_client(value(self.i_phone), value(self.i_operator), value(self.i_tag),
                             value(self.i_tz) or self.default_tz,
                             fields[self.i_tags] if self.i_tags is not None else "", value(self.i_name),
                             {key: fields[i] for key, i in zip(self.attr_keys, self.attr_index)})
        except ValidationError as exc:
            self.rejected.append((line_no, raw, str(exc)))
            return None
        phone = c["phone"]
        if phone in self.seen:
            self.rejected.append((line_no, raw, f"phone: {phone} repeats line {self._line_of(phone)}"))
            return None
        self.seen.add(phone)
        self.first_line[phone] = line_no
        more = TAG_SEPARATOR.join(c["tags"][1:])
        self.more_sets.add(more)
        attrs = load_attrs(c["attrs"])
        found = {"line": line_no, "phone": phone, "operator": c["operator"], "tag": c["tag"], "tz": c["tz"],
                 "more": more, "name": c["name"], "attrs": c["attrs"],
                 **{f"a{i}": attrs.get(key, "") for i, key in enumerate(self.attr_keys)}}
        return tuple(found[column] for column in self.columns)

    def _line_of(self, phone):
        """The line a phone staged already was read on."""
        if phone in self.first_line:
            return self.first_line[phone]
        if not self.indexed:  # a repeat of a phone from a chunk staged whole: rare, so indexed late
            db.execute_sql(f"CREATE INDEX {STAGE}_phone ON {STAGE} (phone)")
            self.indexed = True
        return db.execute_sql(f"SELECT MIN(line) FROM {STAGE} WHERE phone = {db.param}", (phone,)).fetchone()[0]

    # -- writing ------------------------------------------------------------------------------------

    def insert(self, all_or_nothing):
        with db.atomic():  # the database's write lock from here: the check for phones already in
            # the directory and the insert see the same directory
            self._refuse_existing()
            self.rejected.sort()
            if all_or_nothing and self.rejected:
                return ImportReport(0, self.rejected, self.total)
            before = Client.select(pw.fn.MAX(Client.id)).scalar() or 0
            columns = "phone, operator, tag, tz, created_at" + (", name, attrs" if self.personal else "")
            values = f"phone, operator, tag, tz, {db.param}" + (
                f", name, {self._attrs_sql()}" if self.personal else "")
            imported = db.execute_sql(f"INSERT INTO client ({columns}) SELECT {values} FROM {STAGE} "
                                      f"ORDER BY phone", (self.now,)).rowcount
            self._insert_tags(before)
            attach_new_clients(Client.id > before)
        return ImportReport(imported, self.rejected, self.total)

    def _refuse_existing(self):
        if not Client.select().exists():
            return
        found = db.execute_sql(f"SELECT s.line, s.phone, s.operator, s.tag, s.tz FROM {STAGE} s "
                               f"WHERE EXISTS (SELECT 1 FROM client c WHERE c.phone = s.phone)").fetchall()
        if found:
            self.rejected.extend((line, ",".join(row), f"phone: {row[0]} is already a client")
                                 for line, *row in found)
            db.execute_sql(f"DELETE FROM {STAGE} WHERE EXISTS (SELECT 1 FROM client c WHERE c.phone = {STAGE}.phone)")

    def _attrs_sql(self):
        """The JSON of a staged row's attributes: on SQLite built by the database, keys in order, an
        empty value no key (a JSON merge patch drops nulls), the text as json.dumps(...,
        ensure_ascii=False, separators=(",", ":")) writes it (domain.templates.dump_attrs)."""
        if not self.attr_keys:
            return "'{}'"
        if not self.json_in_sql:
            return "attrs"
        pairs = ", ".join(f"'{key}', NULLIF(a{i}, '')" for i, key in enumerate(self.attr_keys))
        return f"json_patch('{{}}', json_object({pairs}))"

    def _insert_tags(self, before):
        """Every new client's first tag by one INSERT ... SELECT from `client`; the others from the
        staged `more` of each, through the distinct `more` values spelled out in TAG_SETS."""
        db.execute_sql(f"INSERT INTO client_tags (client_id, tag) SELECT id, tag FROM client "
                       f"WHERE id > {db.param} AND tag <> '' ORDER BY id", (before,))
        pairs = [(more, tag) for more in self.more_sets if more for tag in more.split(TAG_SEPARATOR)]
        if not pairs:
            return
        self.cursor.executemany(f"INSERT INTO {TAG_SETS} (more, tag) VALUES ({db.param}, {db.param})", pairs)
        db.execute_sql(f"INSERT INTO client_tags (client_id, tag) SELECT c.id, t.tag FROM {STAGE} s "
                       f"JOIN client c ON c.phone = s.phone JOIN {TAG_SETS} t ON t.more = s.more "
                       f"WHERE s.more <> '' ORDER BY c.id")


_SEP = "\x00"  # a value holding it is found by counting
_PHONES = re.compile(r"(?:7[0-9]{10}\x00)*7[0-9]{10}")


def _tag_set(tag, tags):
    """(first tag, the others TAG_SEPARATOR-joined) of a row's `tag` and `tags` cells, as the full
    validator would read them; None when it has something to say."""
    listed = list(dict.fromkeys(([tag] if tag else [])
                                + [t for t in (x.strip() for x in tags.split(TAG_SEPARATOR)) if t]))
    if not all(len(t) <= MAX_TAG and t.isprintable() for t in listed):
        return None
    if not listed:
        return tag, ""
    return listed[0], TAG_SEPARATOR.join(listed[1:])


def _printable_within(values, limit):
    return all(map(str.isprintable, values)) and max(map(len, values), default=0) <= limit


def _lines_of(rows, start):
    """The line each row ends on, counted from the line before the first (`start`) by the line
    breaks inside its quoted values: for a chunk whose rows are not a line each."""
    lines, line = [], start
    for row in rows:
        line += 1 + _breaks(row)
        lines.append(line)
    return lines


def _breaks(row):
    """The line breaks inside a record's quoted values (\n, \r or \r\n: a line each, as the file is
    read)."""
    return sum(v.count("\n") + v.count("\r") - v.count("\r\n") for v in row)
