"""A view of the console written as CSV for a spreadsheet, and one row of it as text to paste.

The file is meant to be opened by double-click in a spreadsheet, so a text cell that starts like a
formula (`=`, `+`, `-`, `@`, or a tab or carriage return before one) gets a leading `'`: a tag typed as
`=HYPERLINK(...)` or a gateway error beginning with `-` is shown as text and never evaluated, which
is what an operator opening an export expects (OWASP's advice for CSV injection). Only text is
touched: numbers stay numbers, and phones are digits. The `'` shows in the cell; the lossless,
re-importable copy of the directory remains `mailer clients export`.

Times are written as the screens show them, in the operator's zone ("2026-01-02 09:30:00", which
spreadsheets read as a date), the zone named in the column's header.
"""
import csv
import datetime as dt
import os
import re
import zoneinfo
from pathlib import Path

from domain import settings as _settings
from domain import times

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


def write_csv(path, header, pages, values, zone=None, stop=lambda: False):
    """Write `header`, then `values(record)` of every record of `pages` (lists of records) to `path`,
    a page at a time; returns the number of rows. The rows go to `path.part` first, renamed over
    `path` (empty until then: new_file reserved the name) at the end, so the final name never holds
    half an export. `stop()` is asked between pages: when it is true the
    export is abandoned (both files removed) and None returned."""
    path = Path(path)
    part = path.with_name(path.name + ".part")
    zone = zone or times.operator_zone()
    rows = 0
    try:
        with open(part, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for page in pages:
                if stop():
                    raise _Stopped
                writer.writerows([cell(v, zone) for v in values(record)] for record in page)
                rows += len(page)
        os.replace(part, path)
        return rows
    except BaseException as exc:
        for leftover in (part, path):
            leftover.unlink(missing_ok=True)
        if isinstance(exc, _Stopped):
            return None
        raise


class _Stopped(Exception):
    pass
