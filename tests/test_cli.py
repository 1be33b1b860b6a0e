"""The command line as a script would use it: outputs, exit codes, and every refusal with a clear
message and nothing written."""
import json

import pytest


def dump(world):
    tables = ("client", "mailing", "message", "attempt")
    if not world.db_path.exists():  # the first command creates the schema, and only that
        return {t: [] for t in tables}
    return {t: world.query(f"SELECT * FROM {t} ORDER BY id") for t in tables}


@pytest.fixture
def seeded(world):
    world.mailer("clients", "add", "--phone", "79001234567", "--tag", "vip", "--tz", "Europe/Moscow")
    world.mailer("clients", "add", "--phone", "79161234567", "--operator", "916", "--tz", "Asia/Tokyo")
    return world


def refused(world, *args, says):
    before = dump(world)
    result = world.mailer(*args, check=False)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    for fragment in ([says] if isinstance(says, str) else says):
        assert fragment in result.stderr, result.stderr
    assert dump(world) == before, "a refused command wrote something"
    return result.stderr


def test_client_add_list_edit_export(seeded):
    rows = seeded.mailer_json("clients", "list")
    assert [(r["phone"], r["operator"], r["tag"], r["tz"]) for r in rows] == [
        ("79161234567", "916", "", "Asia/Tokyo"), ("79001234567", "900", "vip", "Europe/Moscow")]
    assert seeded.mailer_json("clients", "list", "--search", "vip")[0]["phone"] == "79001234567"
    cid = rows[1]["id"]
    edited = seeded.mailer_json("clients", "edit", cid, "--tag", "gold")
    assert edited["tag"] == "gold" and edited["phone"] == "79001234567"
    out = seeded.mailer("clients", "export").stdout
    assert out.splitlines()[0] == "phone,operator,tag,tz"
    assert "79001234567,900,gold,Europe/Moscow" in out
    # Without --tz a client gets the operator's zone (MAILER_TZ).
    seeded.mailer("clients", "add", "--phone", "79260000000")
    assert seeded.mailer_json("clients", "list", "--search", "7926")[0]["tz"] == "Europe/Moscow"


@pytest.mark.parametrize("phone, hint", [
    ("+7 900 123-45-67", "did you mean 79001234567"),
    ("89001234567", "did you mean 79001234567"),
    ("9001234567", "did you mean 79001234567"),
    ("7900123456", "7 followed by 10 digits"),
    ("790012345678", "7 followed by 10 digits"),
    ("phone", "7 followed by 10 digits"),
    ("", "7 followed by 10 digits"),
])
def test_wrong_phones_are_refused(world, phone, hint):
    refused(world, "clients", "add", "--phone", phone, says=["phone:", hint])


def test_client_field_errors(seeded):
    refused(seeded, "clients", "add", "--phone", "79000000000", "--tz", "Mars/Olympus",
            says="unknown time zone 'Mars/Olympus'")
    refused(seeded, "clients", "add", "--phone", "79000000000", "--operator", "12",
            says="operator: must be 3 digits")
    refused(seeded, "clients", "add", "--phone", "79000000000", "--tag", "x" * 65, says="tag: is 65")
    refused(seeded, "clients", "add", "--phone", "79001234567", says="already a client")
    refused(seeded, "clients", "edit", "999", "--tag", "x", says="no client with id 999")
    refused(seeded, "clients", "edit", "1", "--phone", "79161234567", says="already a client")
    refused(seeded, "clients", "delete", "1", "999", says="no client with id 999")
    # Several bad fields are all reported at once.
    refused(seeded, "clients", "add", "--phone", "1", "--tz", "Nowhere", says=["phone:", "tz:"])


def test_mailing_field_errors(seeded):
    create = ("mailings", "create", "--text", "hello")
    refused(seeded, *create, "--start", "+2h", "--end", "+1h", says="end: must be after the start")
    refused(seeded, *create, "--start", "2020-01-01T00:00", "--end", "2020-01-02T00:00",
            says="end: is in the past")
    refused(seeded, "mailings", "create", "--text", "   ", "--start", "now", "--end", "+1h",
            says="text: must not be empty")
    refused(seeded, "mailings", "create", "--text", "x" * 1001, "--start", "now", "--end", "+1h",
            says="text: is 1001 characters")
    refused(seeded, *create, "--start", "tomorrow-ish", "--end", "+1h", says="start: cannot read")
    refused(seeded, *create, "--start", "now", "--end", "+1h", "--tag", "nobody",
            says=["tag: no client has tag 'nobody'", "known: vip"])
    refused(seeded, *create, "--start", "now", "--end", "+1h", "--operator", "99x",
            says="operator: must be 3 digits")
    refused(seeded, *create, "--start", "now", "--end", "+1h", "--operator", "999",
            says="no client has operator '999'")
    for window in ("25:00-26:00", "9-17", "10:00-10:00", "10:00"):
        refused(seeded, *create, "--start", "now", "--end", "+1h", "--window", window, says="window:")
    refused(seeded, "mailings", "show", "42", says="no mailing with id 42")
    refused(seeded, "stats", "42", says="no mailing with id 42")


def test_mailing_lifecycle_rules(seeded):
    scheduled = seeded.mailer_json("mailings", "create", "--text", "later", "--start", "+1h", "--end", "+2h",
                                   "--tag", "vip", "--window", "09:00-21:00")
    assert scheduled["state"] == "scheduled" and scheduled["window"] == "09:00-21:00"
    refused(seeded, "mailings", "pause", scheduled["id"], says="is scheduled; cannot pause")
    edited = seeded.mailer_json("mailings", "edit", scheduled["id"], "--operator", "916", "--tag", "",
                                "--window", "")
    assert (edited["operator"], edited["tag"], edited["window"]) == ("916", None, None)
    running = seeded.mailer_json("mailings", "create", "--text", "now", "--start", "now", "--end", "+1h")
    assert running["state"] == "running"
    refused(seeded, "mailings", "edit", running["id"], "--tag", "vip", says="only its text and end")
    refused(seeded, "mailings", "resume", running["id"], says="is running; cannot resume")
    assert seeded.mailer_json("mailings", "cancel", running["id"])["state"] == "cancelled"
    refused(seeded, "mailings", "edit", running["id"], "--text", "x", says="is cancelled")
    stats = seeded.mailer_json("stats")
    assert [s["id"] for s in stats] == [scheduled["id"], running["id"]]
    for s in stats:
        assert {"id", "state", "total", "pending", "sent", "failed", "expired", "cancelled"} <= set(s)
    assert stats[0]["total"] == 1 and not stats[0]["started"]  # the audience it would have now
    assert stats[1]["cancelled"] == 2 and stats[1]["started"]
    # Plain `mailer stats` prints JSON too.
    assert json.loads(seeded.mailer("stats").stdout)[0]["id"] == scheduled["id"]


def test_import_reports_each_bad_row_and_keeps_the_good(world):
    world.mailer("clients", "add", "--phone", "79000000009")
    csv = world.dir / "in.csv"
    csv.write_text("phone,operator,tag,tz\n"
                   "79000000001,,vip,Europe/Moscow\n"
                   "8900,,,\n"
                   "79000000002,901,,Mars/Base\n"
                   "79000000003,,new,\n"
                   "79000000001,,dup,\n"
                   "79000000009,,,\n"
                   "79000000004,too,many,fields,here\n")
    result = world.mailer("clients", "import", csv, "--json", check=False)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["imported"] == 2 and report["total"] == 7
    assert [(r["line"], r["error"].split(":")[0]) for r in report["rejected"]] == [
        (3, "phone"), (4, "tz"), (6, "phone"), (7, "phone"), (8, "has 5 fields, expected 4")]
    assert "repeats line 2" in report["rejected"][2]["error"]
    assert "already a client" in report["rejected"][3]["error"]
    phones = [r[0] for r in world.query("SELECT phone FROM client ORDER BY phone")]
    assert phones == ["79000000001", "79000000003", "79000000009"]


def test_import_all_or_nothing_and_bad_files(world):
    csv = world.dir / "in.csv"
    csv.write_text("phone,operator,tag,tz\n79000000001,,,\nbad,,,\n")
    refused_partial = world.mailer("clients", "import", csv, "--all-or-nothing", check=False)
    assert refused_partial.returncode == 1 and "line 3" in refused_partial.stdout
    assert "imported 0 of 2" in refused_partial.stdout
    assert world.query("SELECT count(*) FROM client") == [(0,)]
    (world.dir / "header.csv").write_text("name,phone\nx,79000000001\n")
    refused(world, "clients", "import", world.dir / "header.csv", says="header must be phone,operator,tag,tz")
    refused(world, "clients", "import", world.dir / "missing.csv", says="No such file")


def test_unusable_database_is_a_clear_error(world, tmp_path):
    (tmp_path / "adir.db").mkdir()
    world.env["MAILER_DB_URL"] = f"sqlite:///{tmp_path / 'adir.db'}"
    result = world.mailer("clients", "list", check=False)
    assert result.returncode == 3
    assert result.stderr.startswith("error: the database at") and "Traceback" not in result.stderr
