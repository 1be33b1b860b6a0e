"""The CSV import's two paths (domain/client_import.py), on SQLite and PostgreSQL: a chunk checked a
column at a time and staged as it is, and a chunk read row by row with the full validators, must put
the same clients, tags, names and attributes in the directory and report the same refusals at the
same lines. Chunks are made tiny here so one file crosses both paths several times."""
import io
import sqlite3

import pytest

from domain import client_import
from domain.templates import dump_attrs, load_attrs
from models import Client, ClientTag

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]

HEADER = "phone,operator,tag,tz,tags,name,city,note\n"
GOOD = [
    "79000000001,900,vip,UTC,gold;new,Анна,Омск,",
    "79000000002,,,,,Bob,,plain",
    "79000000003,916,,Europe/Moscow,a; b ;a,, Tver ,\"quote \"\" and back\\slash\"",
    "79000000004,,new,,new,Ли,Москва,emoji 🎉 here",
    "79000000005,900,,,,,,",
    "79000000006,926,x,Asia/Tokyo,y,Christopher,Saint Petersburg,/slash/",
]


def directory():
    clients = {c.phone: (c.operator, c.tag, c.tz, c.name, load_attrs(c.attrs), c.attrs)
               for c in Client.select()}
    tags = sorted((c.phone, t.tag) for t, c in
                  ((t, Client.get_by_id(t.client_id)) for t in ClientTag.select()))
    return clients, tags


def test_every_chunk_checked_by_columns_or_by_rows_gives_the_same_directory(backend, monkeypatch):
    # one file, all good: every chunk of 2 goes the fast way
    monkeypatch.setattr(client_import, "CHUNK", 2)
    report = client_import.import_clients(io.StringIO(HEADER + "\n".join(GOOD) + "\n"))
    assert (report.imported, report.rejected, report.total) == (6, [], 6)
    fast = directory()
    # the attributes' JSON as the database built it is the text Python writes for the same values
    for phone, (*_, attrs, text) in fast[0].items():
        assert text == dump_attrs(attrs), phone
    assert fast[0]["79000000003"][:5] == ("916", "a", "Europe/Moscow", "",
                                          {"city": "Tver", "note": 'quote " and back\\slash'})
    assert fast[0]["79000000002"][:5] == ("900", "", "Europe/Moscow", "Bob", {"note": "plain"})
    assert ("79000000001", "gold") in fast[1] and ("79000000003", "b") in fast[1]

    # the same rows with a bad one in each chunk: every chunk goes row by row
    Client.delete().execute()
    ClientTag.delete().execute()
    bad = ",".join(["79990000000", "1", "", "", "", "", "", ""])
    mixed = [row for good in GOOD for row in (good, bad)]
    report = client_import.import_clients(io.StringIO(HEADER + "\n".join(mixed) + "\n"))
    assert report.imported == 6
    assert [line for line, *_ in report.rejected] == [3, 5, 7, 9, 11, 13]
    assert all(why.startswith("operator:") for _, _, why in report.rejected)
    assert directory() == fast


def test_refusals_keep_their_lines_across_chunks(backend, monkeypatch):
    monkeypatch.setattr(client_import, "CHUNK", 3)
    client_import.import_clients(io.StringIO("phone\n79000000009\n"))
    rows = [
        "79000000001,900,,,,,,",          # 2
        "79000000002,900,,,,,,",          # 3
        "",                               # 4: a blank line, no row
        "79000000003,900,,,,\"two\nlines\",,",  # 5-6: a name with a newline: refused at its first line
        "79000000001,900,,,,,,",          # 7: repeats line 2 (read in an earlier chunk)
        "79000000009,900,,,,,,",          # 8: already a client
        "79000000004,900,,,,,,",          # 9
        ",,,,,,,",                        # 10: empty
        "79000000005,900",                # 11: too few fields
        "79000000006,900,,Mars/Base,,,,",  # 12
    ]
    report = client_import.import_clients(io.StringIO(HEADER + "\n".join(rows) + "\n"))
    assert report.imported == 3 and report.total == 9
    why = {line: reason for line, _, reason in report.rejected}
    assert sorted(why) == [5, 7, 8, 10, 11, 12]
    assert why[5].startswith("name:") and why[7] == "phone: 79000000001 repeats line 2"
    assert why[8] == "phone: 79000000009 is already a client"
    assert why[10].startswith("is an empty row") and why[11] == "has 2 fields, expected 8"
    assert why[12].startswith("tz:")
    assert sorted(Client.select(Client.phone).tuples()) == [
        ("79000000001",), ("79000000002",), ("79000000004",), ("79000000009",)]


def test_all_or_nothing_leaves_the_directory_as_it_was(backend):
    report = client_import.import_clients(io.StringIO(HEADER + GOOD[0] + "\n" + GOOD[0] + "\n"),
                                          all_or_nothing=True)
    assert report.imported == 0 and [line for line, *_ in report.rejected] == [3]
    assert Client.select().count() == 0 and ClientTag.select().count() == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # SQLite's file lock
def test_reading_a_file_takes_no_write_lock_on_sqlite(backend, tmp_path):
    """A big file is read and staged before the directory is written: meanwhile another connection
    (a consumer marking messages) can take SQLite's write lock at once."""
    path = str(tmp_path / "engine.db")
    taken = []

    def lines():
        yield HEADER
        for i in range(client_import.CHUNK * 2 + 10):
            if i == client_import.CHUNK + 5:  # a chunk is staged already, the next one half read
                other = sqlite3.connect(path, timeout=0)
                other.execute("BEGIN IMMEDIATE")
                taken.append(True)
                other.rollback()
                other.close()
            yield f"7900{i:07d},900,,,,,,\n"

    report = client_import.import_clients(lines())
    assert taken == [True] and report.imported == client_import.CHUNK * 2 + 10


def test_a_value_holding_the_column_check_separator_is_refused_not_split(backend):
    # the phone column is checked joined by NUL in one pattern: a NUL inside a value must not make
    # one value read as two good phones
    report = client_import.import_clients(io.StringIO("phone\n79000000001\x0079000000002\n79000000003\n"))
    assert report.imported == 1 and [line for line, *_ in report.rejected] == [2]
    assert report.rejected[0][2].startswith("phone:")
    assert [c.phone for c in Client.select()] == ["79000000003"]
