"""A view of the console written as CSV for a spreadsheet, and one row of it as text to paste; and a
mailing's messages as CSV, which `mailer mailings export` and the console's `x` on a mailing both
write (MessageExport, through the one streaming writer, write_rows).

The file is meant to be opened by double-click in a spreadsheet, so a text cell that starts like a
formula (`=`, `+`, `-`, `@`, or a tab or carriage return before one) gets a leading `'`: a tag typed as
`=HYPERLINK(...)` or a gateway error beginning with `-` is shown as text and never evaluated, which
is what an operator opening an export expects (OWASP's advice for CSV injection). Only text is
touched: numbers stay numbers, and phones are digits. The `'` shows in the cell; the lossless,
re-importable copy of the directory remains `mailer clients export`.

Times are written as the screens show them, in the operator's zone ("2026-01-02 09:30:00", which
spreadsheets read as a date), the zone named in the column's header.
"""
import contextlib
import csv
import datetime as dt
import os
import re
import stat
import zoneinfo
from pathlib import Path

from domain import settings as _settings
from domain import stats, times
from domain.vocabulary import PENDING
from models import Message

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def export_dir(settings=None):
    """MAILER_EXPORT_DIR, else the SQLite database's folder, else `data/` (a server database)."""
    settings = settings or _settings.current()
    if settings.export_dir:
        return Path(settings.export_dir).expanduser()
    url = settings.db_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        return Path(url[len("sqlite:///"):]).parent
    return Path("data")


def text(value, zone=None):
    """A value as plain text: nothing for None, a naive-UTC time in the operator's zone."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        zone = zoneinfo.ZoneInfo(zone or times.operator_zone())
        return value.replace(tzinfo=dt.timezone.utc).astimezone(zone).strftime(TIME_FORMAT)
    return str(value)


def cell(value, zone=None):
    """A CSV cell: numbers as they are, text defused when a spreadsheet would read it as a formula."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    shown = text(value, zone)
    return "'" + shown if shown.startswith(FORMULA_START) else shown


def tsv_line(values, zone=None):
    """One row as tab-separated text (to paste): each value as typed, its own tabs and line breaks
    made spaces so the row stays one line of cells."""
    return "\t".join(re.sub(r"[\t\r\n]+", " ", text(v, zone)) for v in values)


def new_file(directory, view, now=None):
    """A new, empty file `{view}-YYYYMMDD-HHMMSS.csv` (operator's time) in `directory`, created
    exclusively (a second export in the same second gets `-2`, ...); returns its absolute path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(zoneinfo.ZoneInfo(times.operator_zone()))
    stem = f"{view}-{now:%Y%m%d-%H%M%S}"
    for n in range(1, 1000):
        path = directory / (f"{stem}.csv" if n == 1 else f"{stem}-{n}.csv")
        try:
            with open(path, "x", encoding="utf-8"):
                return path.resolve()
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory / stem}.csv and 998 more exist")


def write_rows(fh, header, pages, row, stop=lambda: False):
    """The one streaming writer: `header`, then `row(record)` (its CSV cells) of every record of
    `pages` (lists of records), to the open text file `fh`, each page as it is read; returns the
    number of rows. `stop()` is asked between pages: when it is true, _Stopped is raised."""
    writer = csv.writer(fh)
    writer.writerow(header)
    rows = 0
    for page in pages:
        if stop():
            raise _Stopped
        writer.writerows(map(row, page))
        rows += len(page)
    return rows


def write_csv(path, header, pages, values=None, zone=None, stop=lambda: False, cells=None, reserved=True):
    """Write `header`, then the cells of every record of `pages` (lists of records) to `path`, a page
    at a time (write_rows); returns the number of rows. Each record's cells are `cells(record)`, or
    `values(record)` made cells (cell: times in `zone`, formulas defused). The rows go to `path` as
    replaced() writes it: the final name never holds half an export, and a file already there stays
    as it was until then. On a failure `path` is removed too when `reserved` (new_file made it,
    empty, for this export). `stop()` is asked between pages: when it is true the export is abandoned
    (as on a failure) and None returned."""
    zone = zone or times.operator_zone()
    row = cells or (lambda record: [cell(v, zone) for v in values(record)])
    try:
        with replaced(path) as fh:
            return write_rows(fh, header, pages, row, stop)
    except BaseException as exc:
        if reserved:
            Path(path).unlink(missing_ok=True)
        if isinstance(exc, _Stopped):
            return None
        raise


@contextlib.contextmanager
def replaced(path):
    """A text file handle whose content replaces the file at `path` only once it is whole: written to
    `path.part` beside it and renamed over it at the end; on a failure the part is removed and an
    existing file stays as it was. A symbolic link is followed (its target is replaced, the link
    kept), and what is not a regular file (a device such as /dev/null or /dev/stdout, a named pipe)
    is written into directly: there is no file to replace, and a rename would put a file in its
    place."""
    target = Path(os.path.realpath(path))
    try:
        special = not stat.S_ISREG(target.stat().st_mode)
    except FileNotFoundError:
        special = False
    if special:
        with open(target, "w", newline="", encoding="utf-8") as fh:
            yield fh
        return
    part = target.with_name(target.name + ".part")
    try:
        with open(part, "w", newline="", encoding="utf-8") as fh:
            yield fh
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


class _Stopped(Exception):
    pass


# ---------------------------------------------------------------------------------------------------
# A mailing's messages: `mailer mailings export` and the console's `x` on a mailing write this


class LocalTimes:
    """Stored times (naive UTC: SQLite's text, PostgreSQL's datetimes) as text in the operator's
    zone, as text() writes them. Each distinct second is converted once: a mailing's messages share
    few (one created time, the seconds it sent in), so a million rows cost a few thousand
    conversions; the memo is emptied when it holds 100,000."""

    def __init__(self, zone):
        self.zone = zone
        self.memo = {}

    def __call__(self, value):
        if value is None:
            return ""
        key = value[:19] if isinstance(value, str) else value.replace(microsecond=0)
        shown = self.memo.get(key)
        if shown is None:
            if len(self.memo) >= 100_000:
                self.memo.clear()
            shown = self.memo[key] = text(dt.datetime.fromisoformat(key) if isinstance(key, str) else key,
                                          self.zone)
        return shown


def defused(value):
    """cell() of a text known to be text (None: nothing)."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_START) else value


def one_line(value):
    """A text as one line: its tabs and line breaks made spaces."""
    if not value or not ("\n" in value or "\r" in value or "\t" in value):
        return value
    return re.sub(r"[\t\r\n]+", " ", value)


class MessageExport:
    """Every message of one mailing (of some statuses, whose phone contains `phone`, or the one
    `message`), one row each, in the order of the mailing detail's table (by client: stats.message_tuples,
    a page at a time through the (mailing, client) index, never OFFSET). The view protocol of
    console.exporting: `export_name`, `export_header()`, `export_pages()`, and `export_cells(row)`.

    Columns: message id, phone, client id (empty: the client was deleted since), status, attempts,
    created, sent and next attempt (a pending one's) times in the operator's zone, named in their
    headers, the last error on one line, and the text it was sent with (empty until it went). The
    status is the vocabulary's word (`unknown` for in doubt, as --status, `mailings show --json` and
    `stats` say it), so that a script and a spreadsheet's filter read the same word. Text cells are
    defused like every export's (cell)."""

    def __init__(self, mailing_id, status=None, phone="", message=None, zone=None):
        self.mailing_id, self.status, self.phone, self.message = mailing_id, status, phone, message
        self.zone = zone or times.operator_zone()
        self._local = LocalTimes(self.zone)

    @property
    def export_name(self):
        statuses = [self.status] if isinstance(self.status, str) else list(self.status or ())
        return f"mailing-{self.mailing_id}-messages" + "".join(f"-{s}" for s in statuses)

    def export_header(self):
        zone = self.zone
        return ("Message id", "Phone", "Client id", "Status", "Attempts", f"Created at ({zone})",
                f"Sent at ({zone})", f"Next attempt ({zone})", "Last error", "Text")

    def export_pages(self, size=stats.EXPORT_PAGE):
        fields = (Message.id, Message.phone, Message.status, Message.attempts, Message.created_at,
                  Message.sent_at, Message.next_attempt_at, Message.last_error, Message.text,
                  Message.client_id)
        return stats.message_tuples(self.mailing_id, fields, self.status, self.phone, self.message,
                                    size=size, convert_times=False)

    def export_cells(self, row):
        (message_id, phone, status, attempts, created_at, sent_at, next_attempt_at, error, sent_text,
         client_id) = row
        local = self._local
        return (message_id, phone, client_id, status, attempts, local(created_at), local(sent_at),
                local(next_attempt_at) if status == PENDING else "", defused(one_line(error)),
                defused(sent_text))
