"""The command line as a script would use it: outputs, exit codes, and every refusal with a clear
message and nothing written."""
import datetime as dt
import json
import os

import pytest

import models
from domain import validation


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


def refused_all(world, cases):
    """refused() for a list of (args, says), the command lines run one after another in one
    `mailer` process (Env.mailer_batch: a process each costs ~0.5 s). Nothing may be written by any
    of them. Returns their stderr, in order."""
    before = dump(world)
    results = world.mailer_batch([args for args, _ in cases])
    for (args, says), result in zip(cases, results):
        assert result.returncode == 2, (args, result.returncode, result.stdout, result.stderr)
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr, (args, result.stderr)
        for fragment in ([says] if isinstance(says, str) else says):
            assert fragment in result.stderr, (args, result.stderr)
    assert dump(world) == before, "a refused command wrote something"
    return [result.stderr for result in results]


def test_client_add_list_edit_export(seeded):
    rows = seeded.mailer_json("clients", "list")
    assert [(r["phone"], r["operator"], r["tag"], r["tz"]) for r in rows] == [
        ("79161234567", "916", "", "Asia/Tokyo"), ("79001234567", "900", "vip", "Europe/Moscow")]
    assert seeded.mailer_json("clients", "list", "--search", "vip")[0]["phone"] == "79001234567"
    cid = rows[1]["id"]
    edited = seeded.mailer_json("clients", "edit", cid, "--tag", "gold")
    assert edited["tag"] == "gold" and edited["phone"] == "79001234567"
    out = seeded.mailer("clients", "export").stdout
    assert out.splitlines()[0] == "phone,operator,tag,tz,tags,name"
    assert "79001234567,900,gold,Europe/Moscow," in out
    # Without --tz a client gets the operator's zone (MAILER_TZ).
    seeded.mailer("clients", "add", "--phone", "79260000000")
    assert seeded.mailer_json("clients", "list", "--search", "7926")[0]["tz"] == "Europe/Moscow"


WRONG_PHONES = [
    ("+7 900 123-45-67", "did you mean 79001234567"),
    ("89001234567", "did you mean 79001234567"),
    ("9001234567", "did you mean 79001234567"),
    ("7900123456", "7 followed by 10 digits"),
    ("790012345678", "7 followed by 10 digits"),
    ("phone", "7 followed by 10 digits"),
    ("", "7 followed by 10 digits"),
]


def test_wrong_phones_are_refused(world):
    phone, hint = WRONG_PHONES[0]
    refused(world, "clients", "add", "--phone", phone, says=["phone:", hint])
    refused_all(world, [(("clients", "add", "--phone", phone), ["phone:", hint]) for phone, hint in WRONG_PHONES])


def test_client_field_errors(seeded):
    refused(seeded, "clients", "add", "--phone", "79000000000", "--tz", "Mars/Olympus",
            says="unknown time zone 'Mars/Olympus'")
    refused_all(seeded, [
        (("clients", "add", "--phone", "79000000000", "--operator", "12"), "operator: must be 3 digits"),
        (("clients", "add", "--phone", "79000000000", "--tag", "x" * 65), "tag: is 65"),
        (("clients", "add", "--phone", "79001234567"), "already a client"),
        (("clients", "edit", "999", "--tag", "x"), "no client with id 999"),
        (("clients", "edit", "1", "--phone", "79161234567"), "already a client"),
        (("clients", "delete", "1", "999"), "no client with id 999"),
        # Several bad fields are all reported at once.
        (("clients", "add", "--phone", "1", "--tz", "Nowhere"), ["phone:", "tz:"]),
    ])


def test_mailing_field_errors(seeded):
    create = ("mailings", "create", "--text", "hello")
    refused(seeded, *create, "--start", "+2h", "--end", "+1h", says="end: must be after the start")
    refused_all(seeded, [
        ((*create, "--start", "2020-01-01T00:00", "--end", "2020-01-02T00:00"), "end: is in the past"),
        (("mailings", "create", "--text", "   ", "--start", "now", "--end", "+1h"), "text: must not be empty"),
        (("mailings", "create", "--text", "x" * 1001, "--start", "now", "--end", "+1h"),
         "text: is 1001 characters"),
        ((*create, "--start", "tomorrow-ish", "--end", "+1h"), "start: cannot read"),
        ((*create, "--start", "now", "--end", "+1h", "--tag", "nobody"),
         ["tag: no client has tag 'nobody'", "known: vip"]),
        ((*create, "--start", "now", "--end", "+1h", "--operator", "99x"), "operator: must be 3 digits"),
        ((*create, "--start", "now", "--end", "+1h", "--operator", "999"), "no client has operator '999'"),
        *[((*create, "--start", "now", "--end", "+1h", "--window", window), "window:")
          for window in ("25:00-26:00", "9-17", "10:00-10:00", "10:00")],
        (("mailings", "show", "42"), "no mailing with id 42"),
        (("stats", "42"), "no mailing with id 42"),
    ])


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
    refused(seeded, "mailings", "edit", running["id"], "--tag", "vip", says="only its text, end and spread")
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
    (world.dir / "header.csv").write_text("name,mobile\nx,79000000001\n")
    refused(world, "clients", "import", world.dir / "header.csv", says="header must have a phone column")
    (world.dir / "header.csv").write_text("phone,Home City\n79000000001,x\n")
    refused(world, "clients", "import", world.dir / "header.csv",
            says="column 'home city' is neither phone, operator, tag, tz, tags nor name, nor an attribute key")
    refused(world, "clients", "import", world.dir / "missing.csv", says="No such file")


def test_unusable_database_is_a_clear_error(world, tmp_path):
    (tmp_path / "adir.db").mkdir()
    world.env["MAILER_DB_URL"] = f"sqlite:///{tmp_path / 'adir.db'}"
    result = world.mailer("clients", "list", check=False)
    assert result.returncode == 3
    assert result.stderr.startswith("error: the database at") and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------------
# Whatever is typed or imported: a refusal naming its field, never a traceback.

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def only_errors(stderr):
    lines = stderr.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), stderr


def test_digits_are_ascii_only_on_the_command_line(world):
    for script in (ARABIC_INDIC, FULL_WIDTH):
        # '٧٩٠٠١٢٣٤٥٦٧' was a second client beside 79001234567, and the gateway got two messages.
        only_errors(refused(world, "clients", "add", "--phone", "79001234567".translate(script),
                            says=["phone: must be 7 followed by 10 digits", "only the digits 0-9",
                                  "did you mean 79001234567?"]))
        refused(world, "clients", "add", "--phone", "7" + "9001234567".translate(script), says="phone:")
    assert world.mailer("clients", "add", "--phone", "79001234567").stdout.strip() == "1"
    refused(world, "clients", "add", "--phone", "79001234567".translate(ARABIC_INDIC), says="phone:")
    refused(world, "clients", "add", "--phone", "79001234568", "--operator", "900".translate(ARABIC_INDIC),
            says=["operator: must be 3 digits", "only the digits 0-9"])
    create = ("mailings", "create", "--text", "hi")
    refused_all(world, [
        (("clients", "add", "--phone", "79001234568", "--operator", "90²"), "operator:"),
        ((*create, "--start", "now", "--end", "+1h", "--window", "09:00-21:00".translate(FULL_WIDTH)),
         ["window: must look like 09:00-21:00", "only the digits 0-9"]),
        ((*create, "--start", "now", "--end", "+" + "10".translate(ARABIC_INDIC) + "m"),
         ["end: cannot read", "only the digits 0-9"]),
        ((*create, "--start", "2099-01-01T09:00".translate(FULL_WIDTH), "--end", "+1h"),
         ["start: cannot read", "only the digits 0-9"]),
        (("stats", "1".translate(ARABIC_INDIC)), ["id: must be a whole number", "only the digits 0-9"]),
        (("clients", "list", "--limit", "5".translate(FULL_WIDTH)), "limit: must be a whole number"),
    ])
    assert world.query("SELECT phone FROM client") == [("79001234567",)]


def test_import_takes_ascii_digits_and_printable_tags_only(world):
    csv = world.dir / "digits.csv"
    csv.write_text("phone,operator,tag,tz\n"
                   "79000000001,900,,UTC\n"
                   "79000000002,90²,,UTC\n"          # str.isdigit() is true for '²': the fast path took it
                   "79000000003,９０１,,UTC\n"
                   "7٩٠٠٠٠٠٠٠٠٤,,,UTC\n"
                   "79000000005,,a\x00b,UTC\n"
                   "79000000006,,\x1b[31mred,UTC\n"
                   "79000000007,,,\n", encoding="utf-8")
    result = world.mailer("clients", "import", csv, "--json", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert [(r["line"], r["error"].split(":")[0]) for r in report["rejected"]] == [
        (3, "operator"), (4, "operator"), (5, "phone"), (6, "tag"), (7, "tag")]
    assert "only the digits 0-9, not '²'" in report["rejected"][0]["error"].replace(" are accepted", "")
    assert "U+0000" in report["rejected"][3]["error"] and "U+001B" in report["rejected"][4]["error"]
    assert report["imported"] == 2 and report["total"] == 7
    assert world.query("SELECT phone, operator FROM client ORDER BY phone") == [
        ("79000000001", "900"), ("79000000007", "900")]


def test_import_refuses_a_file_that_is_not_utf8_or_is_a_directory(world):
    latin1 = world.dir / "latin1.csv"
    # The bad byte comes after a good row: nothing is imported all the same.
    latin1.write_bytes("phone,operator,tag,tz\n79000000001,,vip,UTC\n79000000002,,café,UTC\n"
                       .encode("latin-1"))
    only_errors(refused(world, "clients", "import", latin1,
                        says=["error: file: is not UTF-8 text (byte 60 of the file, 0xE9, on line 3)"]))
    refused(world, "clients", "import", latin1, "--all-or-nothing", says="file: is not UTF-8 text")
    refused(world, "clients", "import", world.dir, says=f"error: file: is a directory: {world.dir}")
    refused(world, "clients", "export", world.dir, says="error: file: Is a directory")
    assert world.query("SELECT count(*) FROM client") == [(0,)]


def test_times_beyond_the_calendar_are_refused(seeded):
    create = ("mailings", "create", "--text", "hi")
    only_errors(refused(seeded, *create, "--start", "now", "--end", "+99999999d", says=["end: ", "is out of range"]))
    cases = [((*create, "--start", start, "--end", end), [f"{field}: ", "is out of range"])
             for start, end, field in (("now", "9999-12-31T23:59-05:00", "end"), ("now", "+99999999d", "end"),
                                       ("0001-01-01T00:00+05:00", "+1d", "start"),
                                       ("now", "+" + "9" * 5000 + "s", "end"), ("+99999999999w", "+1d", "start"),
                                       ("now", "1899-12-31T23:59Z", "end"))]
    for stderr in refused_all(seeded, cases):
        only_errors(stderr)
    mailing = seeded.mailer_json(*create, "--start", "+1h", "--end", "+2h")
    refused(seeded, "mailings", "edit", mailing["id"], "--end", "+99999999d",
            says="end: '+99999999d' is out of range")


def test_ids_limits_and_offsets_must_be_whole_numbers_in_range(seeded):
    mailing = seeded.mailer_json("mailings", "create", "--text", "hi", "--start", "+1h", "--end", "+2h")
    whole = "error: id: must be a whole number from 1 to 9223372036854775807"
    only_errors(refused(seeded, "mailings", "cancel", str(2 ** 64), says=whole))
    ids = [(args, whole)
           for bad in (str(2 ** 64), str(2 ** 63), "0", "-1", "1.5", " 1")
           for args in (("stats", bad), ("clients", "delete", "1", bad), ("clients", "edit", bad, "--tag", "x"),
                        ("mailings", "show", bad), ("mailings", "edit", bad, "--text", "x"),
                        ("mailings", "pause", bad), ("mailings", "resume", bad), ("mailings", "cancel", bad))]
    for stderr in refused_all(seeded, ids):
        only_errors(stderr)
    refused_all(seeded, [
        *[(("logs", "--mailing", bad), "error: mailing: must be a whole number from 1")
          for bad in (str(2 ** 64), str(2 ** 63), "0", "-1", "1.5", " 1")],
        # The largest id there can be is looked up, and is not there.
        (("stats", str(2 ** 63 - 1)), f"id: no mailing with id {2 ** 63 - 1}"),
        (("clients", "delete", str(2 ** 63 - 1)), f"id: no client with id {2 ** 63 - 1}"),
        (("clients", "list", "--limit", "-1"), "error: limit: must be a whole number from 0"),
        (("clients", "list", "--offset", "-5"), "error: offset: must be a whole number from 0"),
        (("mailings", "show", mailing["id"], "--limit", "-1"), "error: limit:"),
        (("mailings", "show", mailing["id"], "--offset", "-5"), "error: offset:"),
    ])
    assert len(seeded.mailer_json("clients", "list", "--limit", "1", "--offset", "0")) == 1


def test_text_is_utf8_without_control_characters(seeded):
    create = ("mailings", "create", "--start", "+1h", "--end", "+2h", "--text")
    # Bytes that are not UTF-8 reach Python's argv as lone surrogates (b'\xff' -> '\udcff').
    invalid = "hi " + os.fsdecode(b"\xff") + " there"
    assert invalid == "hi \udcff there"
    only_errors(refused(seeded, *create, invalid, says="error: text: is not valid UTF-8"))
    refused(seeded, "clients", "add", "--phone", "79000000000", "--tag", os.fsdecode(b"v\xe9p"),
            says="error: tag: is not valid UTF-8")
    refused(seeded, *create, "hi \x1b[2J there",
            says="text: contains a control character U+001B at position 4; only newlines are allowed")
    refused(seeded, *create, "csi \x9b31m", says="text: contains a control character U+009B at position 5")
    refused_all(seeded, [
        ((*create, "tab\there"), "U+0009"),
        ((*create, "cr\rhere"), "U+000D"),
        ((*create, "del\x7f"), "U+007F"),
        (("clients", "add", "--phone", "79000000000", "--tag", "a\x1b[1mb"),
         "tag: contains a control character U+001B"),
    ])
    mailing = seeded.mailer_json(*create, "line one\r\nline two\nlast line")
    assert mailing["text"] == "line one\nline two\nlast line"
    # NUL cannot be in an argument at all (the system ends the argument there); the console can type
    # it, and the same validator refuses it.
    with pytest.raises(ValueError):
        seeded.mailer(*create, "a\x00b")
    with pytest.raises(validation.ValidationError) as refusal:
        validation.validate_text("a\x00b")
    assert refusal.value.errors == {
        "text": "contains a control character U+0000 at position 2; only newlines are allowed"}


def test_argument_errors_name_their_field(world):
    only_errors(refused(world, "mailings", "create", "--text", "hi",
                        says=["error: start: is required\nerror: end: is required"]))
    refused(world, "clients", "list", "--frob", says="error: arguments: not recognized: --frob")
    refused_all(world, [
        (("mailings", "show", "1", "--status", "lost"), "error: status: invalid choice: 'lost'"),
        (("stats", "x"), "error: id: must be a whole number"),
        (("clients", "list", "--limit"), "error: limit: expected one argument"),
        (("logs",), "one of --mailing, --message, --client is required"),
        (("clients", "list", "--frob"), "error: arguments: not recognized: --frob"),
        (("clients", "frob"), "error: action: invalid choice: 'frob'"),
    ])
    for args in (("--help",), ("mailings", "create", "--help")):
        shown = world.mailer(*args)
        assert shown.stdout.startswith("usage: mailer") and not shown.stderr


def last_sunday(year, month):
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() + 1) % 7)


def test_a_local_time_in_a_dst_gap_is_the_instant_the_clocks_jump(world):
    world.env["MAILER_TZ"] = "Europe/Berlin"
    year = dt.date.today().year + 2
    spring, autumn = last_sunday(year, 3), last_sunday(year, 10)
    # 02:30 does not exist that day in Berlin: at 02:00 CET (01:00 UTC) the clocks jump to 03:00 CEST.
    created = world.mailer_json("mailings", "create", "--text", "spring", "--start", f"{spring}T02:30",
                                "--end", f"{spring}T05:00")
    stored = world.query("SELECT start_at FROM mailing WHERE id = ?", created["id"])
    assert stored == [(f"{spring} 01:00:00",)]
    assert created["start"] == f"{spring}T01:00:00Z"
    assert f"{spring} 03:00:00 Europe/Berlin" in world.mailer("mailings", "list").stdout
    # An explicit offset is taken as written.
    edited = world.mailer_json("mailings", "edit", created["id"], "--start", f"{spring}T02:30+01:00")
    assert edited["start"] == f"{spring}T01:30:00Z"
    # The hour repeated in autumn is read as its first occurrence (still CEST, UTC+2).
    edited = world.mailer_json("mailings", "edit", created["id"], "--end", f"{autumn}T02:30")
    assert edited["end"] == f"{autumn}T00:30:00Z"


def test_gateway_sim_takes_the_simulators_own_flags(world):
    result = world.mailer("gateway-sim", "--help")
    assert "--trickle-rate" in result.stdout and "--port" in result.stdout
    refused_flag = world.mailer("gateway-sim", "--port", "nope", check=False)
    assert refused_flag.returncode == 2 and "Traceback" not in refused_flag.stderr
