"""The stop list: phones that refused mailings (126-FZ art. 44.1, 38-FZ art. 18).

A phone on it is left out when an audience is built (`domain.mailings.materialize`) and checked again
in the transaction that puts a message on the wire (`engine.dispatcher`): a message whose phone
opted out after its audience was built ends `suppressed` instead of going. The list is keyed by the
phone, so deleting a client and importing it again does not bring the number back.
"""
import csv
from dataclasses import dataclass
from pathlib import Path

import peewee as pw

from domain.csv_files import ImportReport, read_csv_file
from domain.times import utcnow
from domain.validation import ValidationError, unreadable, validate_phone
from domain.vocabulary import OPT_OUT_SOURCES
from models import Client, OptOut, db

MAX_REASON = 500


@dataclass(frozen=True)
class OptOutRow:
    phone: str
    source: str
    reason: str
    created_at: object
    client_id: int | None  # the client with this phone now, if any

    def as_dict(self):
        return {"phone": self.phone, "source": self.source, "reason": self.reason,
                "created_at": self.created_at.isoformat() + "Z" if self.created_at else None,
                "client_id": self.client_id}


def _clean_reason(reason):
    """One line of printable text: a reason is shown in lists and terminals as it is, and a reason
    that spans lines in a CSV is an unclosed quote that swallowed the next rows."""
    reason = str(reason or "").strip()
    if "\n" in reason or "\r" in reason:
        raise ValidationError({"reason": "spans more than one line (in a CSV file: a quote not closed, "
                                         "which took the next rows into this reason)"})
    why = unreadable(reason)
    if why:
        raise ValidationError({"reason": why})
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        raise ValidationError({"reason": f"is {len(reason)} characters long; at most {MAX_REASON}"})
    return reason


def _clean_source(source):
    if source not in OPT_OUT_SOURCES:
        raise ValidationError({"source": f"must be one of {', '.join(OPT_OUT_SOURCES)}"})
    return source


def add(phones, source="cli", reason=""):
    """Put these phones on the stop list; returns how many were not on it yet. A phone already on it
    keeps its first source, reason and time (when it first refused is what a complaint asks)."""
    phones = list(dict.fromkeys(validate_phone(p) for p in phones))  # ' 7900...' and '7900...' are one
    source, reason = _clean_source(source), _clean_reason(reason)
    rows = [{"phone": p, "source": source, "reason": reason, "created_at": utcnow()} for p in phones]
    if not rows:
        return 0
    with db.atomic():
        before = OptOut.select().where(OptOut.phone.in_(phones)).count()
        OptOut.insert_many(rows).on_conflict_ignore().execute()
    return len(phones) - before


def remove(phones):
    """Take these phones off the stop list (the client asked to receive mailings again); returns how
    many were on it."""
    phones = [validate_phone(p) for p in phones]
    return OptOut.delete().where(OptOut.phone.in_(phones)).execute()


def is_opted_out(phone):
    return OptOut.select().where(OptOut.phone == phone).exists()


def opted_out_phones(phones, chunk=500):
    """The ones of these phones on the stop list (a page of a table, an export's page: a few thousand)."""
    phones, found = list(phones), set()
    for i in range(0, len(phones), chunk):
        found.update(p for (p,) in OptOut.select(OptOut.phone).where(OptOut.phone.in_(phones[i:i + chunk])).tuples())
    return found


def count():
    return OptOut.select().count()


def page(limit=100, offset=0, search=""):
    """The newest opt-outs first, each with the client that has the phone now."""
    query = (OptOut.select(OptOut.phone, OptOut.source, OptOut.reason, OptOut.created_at, Client.id)
             .join(Client, pw.JOIN.LEFT_OUTER, on=(Client.phone == OptOut.phone)))
    if search:
        query = query.where(OptOut.phone.contains(search) | OptOut.reason.contains(search))
    query = query.order_by(OptOut.created_at.desc(), OptOut.phone).limit(limit).offset(offset)
    return [OptOutRow(*row) for row in query.tuples()]



def import_opt_outs(source, reason=""):
    """Import a CSV whose header names a `phone` column (and optionally `reason`): each good phone
    goes on the list (source `import`), each bad line is reported with its number."""
    if isinstance(source, (str, Path)):
        return read_csv_file(source, lambda fh: import_opt_outs(fh, reason))
    default_reason = _clean_reason(reason)  # refused once for the file, not on every row
    # strict: a quote not closed before the end of the file is an error, not a silent last field
    reader = csv.reader(source, strict=True)
    header = [h.strip().lower() for h in next(reader, [])]
    if "phone" not in header or not set(header) <= {"phone", "reason"} or len(set(header)) != len(header):
        raise ValidationError({"file": f"header must be phone or phone,reason; got {','.join(header) or 'nothing'}"})
    i_phone, i_reason = header.index("phone"), header.index("reason") if "reason" in header else None
    rejected, rows, total = [], {}, 0
    now = utcnow()
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # a stray quote, a field over the csv module's limit: this row only
            total += 1
            rejected.append((reader.line_num, "", f"cannot be read as CSV: {exc}"))
            continue
        if not fields or not "".join(fields).strip():
            continue
        total += 1
        if i_reason is not None and len(fields) == len(header) - 1 and i_reason == len(header) - 1:
            fields = [*fields, ""]  # phone,reason with the optional reason left out
        try:
            if len(fields) != len(header):
                raise ValidationError({"row": f"has {len(fields)} fields, expected {len(header)}"})
            phone = validate_phone(fields[i_phone].strip())
            why = _clean_reason(fields[i_reason]) if i_reason is not None else ""
        except ValidationError as exc:
            rejected.append((reader.line_num, ",".join(fields)[:200], str(exc)))
            continue
        rows.setdefault(phone, {"phone": phone, "source": "import", "reason": why or default_reason,
                                "created_at": now})
    with db.atomic():
        before = OptOut.select().count()
        batch = list(rows.values())
        for i in range(0, len(batch), 500):
            OptOut.insert_many(batch[i:i + 500]).on_conflict_ignore().execute()
        added = OptOut.select().count() - before
    return ImportReport(added, rejected, total)
