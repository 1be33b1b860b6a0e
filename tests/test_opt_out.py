"""The stop list (issue 12, part 1), judged from outside: the simulator's log of what it accepted and
the database file. An opted-out phone is left out of new audiences, a phone that opts out after its
audience was built is suppressed when its turn comes, and one that opts out while sending runs is
never put on the wire after the opt-out committed."""
import datetime as dt
import json

from support import phones, wait_for


def accepted_phones(sim):
    try:
        return [str(json.loads(line)["phone"]) for line in open(sim.log_path, encoding="utf-8")]
    except FileNotFoundError:
        return []


def settled(world, mailing_id):
    return lambda: world.query("SELECT count(*) FROM message WHERE mailing_id = ? AND status = 'pending'",
                               mailing_id)[0][0] == 0


def test_an_opted_out_phone_is_left_out_of_new_audiences_even_as_a_new_client(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    a, b, c = phones(3)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in (a, b, c)])
    assert world.mailer("optout", "add", b, "--reason", "replied STOP").stdout.startswith("1 phone(s)")
    # deleting the client and adding it again does not bring the number back
    (client_id,) = world.query("SELECT id FROM client WHERE phone = ?", b)[0]
    world.mailer("clients", "delete", client_id)
    world.mailer("clients", "add", "--phone", b)
    preview = world.mailer("mailings", "create", "--text", "hi", "--start", "now", "--end", "+5m", "--dry-run").stdout
    assert "recipients now: 2 (3 match, 1 of them opted out)" in preview
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "hi", "--start", "now", "--end", "+5m")
    wait_for(settled(world, mailing["id"]), timeout=30, message="every message settled")
    assert sorted(accepted_phones(sim)) == sorted([a, c])
    assert world.query("SELECT phone FROM message ORDER BY phone") == [(a,), (c,)]
    listed = world.mailer_json("optout", "list")
    assert [(r["phone"], r["source"], r["reason"]) for r in listed] == [(b, "cli", "replied STOP")]


def test_a_phone_that_opts_out_after_its_audience_was_built_is_suppressed(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    numbers = phones(4)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in numbers])
    # No consumer yet: the mailing starts and its audience is built, but nothing is sent.
    mailing = world.mailer_json("mailings", "create", "--text", "hi", "--start", "now", "--end", "+5m")
    assert world.statuses(mailing["id"]) == {"pending": 4}
    world.mailer("optout", "add", numbers[1], numbers[3])
    world.start_consumer()
    wait_for(settled(world, mailing["id"]), timeout=30, message="every message settled")
    assert sorted(accepted_phones(sim)) == sorted([numbers[0], numbers[2]])
    assert world.statuses(mailing["id"]) == {"sent": 2, "suppressed": 2}
    stats = json.loads(world.mailer("stats", mailing["id"]).stdout)
    assert (stats["sent"], stats["suppressed"], stats["total"]) == (2, 2, 4)
    assert "suppressed" in world.mailer("report").stdout


def test_a_phone_opting_out_while_sending_runs_never_goes_after_the_opt_out(world, simulator):
    sim = simulator(latency=(30, 60))
    world.use_gateway(sim)
    numbers = phones(300)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in numbers])
    world.start_consumer(MAILER_CONCURRENCY="2", MAILER_DISPATCHERS="1", MAILER_BATCH="8")
    mailing = world.mailer_json("mailings", "create", "--text", "hi", "--start", "now", "--end", "+5m")
    wait_for(lambda: len(accepted_phones(sim)) >= 20, timeout=30, message="sending under way")
    waiting = [p for (p,) in world.query(
        "SELECT phone FROM message WHERE mailing_id = ? AND status = 'pending' AND sending_since IS NULL "
        "ORDER BY client_id DESC LIMIT 100", mailing["id"])]
    assert len(waiting) == 100
    world.mailer("optout", "add", *waiting)
    committed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    wait_for(settled(world, mailing["id"]), timeout=90, message="every message settled")
    reached = set(accepted_phones(sim)) & set(waiting)
    # What reached the gateway of those phones was put on the wire before the opt-out committed.
    for phone in reached:
        (on_wire,) = world.query("SELECT sending_since FROM message WHERE phone = ?", phone)[0]
        assert dt.datetime.fromisoformat(str(on_wire)) < committed, phone
    suppressed = world.statuses(mailing["id"]).get("suppressed", 0)
    assert suppressed == len(waiting) - len(reached) and suppressed > 50
    assert len(accepted_phones(sim)) == len(set(accepted_phones(sim)))  # nothing twice


def test_the_stop_list_import_reports_bad_lines(world):
    path = world.dir / "stop.csv"
    path.write_text("phone,reason\n79000000001,STOP\n79000000001,again\nnot-a-phone,x\n79000000002,\n",
                    encoding="utf-8")
    result = world.mailer("optout", "import", path, check=False)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "2 phone(s) put on the stop list from 4 row(s)"
    assert "line 4: phone: must be 7 followed by 10 digits" in result.stdout
    assert world.query("SELECT phone, source, reason FROM opt_out ORDER BY phone") == [
        ("79000000001", "import", "STOP"), ("79000000002", "import", "")]
    assert world.mailer("optout", "remove", "79000000001").stdout.startswith("1 phone(s) taken off")
    assert world.query("SELECT count(*) FROM opt_out")[0][0] == 1


def test_the_stop_list_import_never_lets_a_broken_row_swallow_phones(world):
    """From an outside break-in: an unclosed quote took the next rows into a reason (exit 0), a huge
    field was a traceback, a reason could carry terminal escapes."""
    cases = {
        "quote.csv": 'phone,reason\n79001112253,"asked by SMS\n79001112254,STOP\n79001112255,STOP\n',
        "huge.csv": "phone,reason\n79001112251," + "x" * 200_000 + "\n79001112252,ok\n",
        "escape.csv": 'phone,reason\n79001112250,a\x1b[31mred\n79001112256\n79001112261,"two\nlines"\n',
    }
    for name, text in cases.items():
        (world.dir / name).write_text(text, encoding="utf-8")
    quoted = world.mailer("optout", "import", world.dir / "quote.csv", check=False)
    # the quote never closes: the rows it took are reported, none of them put on the list silently
    assert quoted.returncode == 1 and "cannot be read as CSV: unexpected end of data" in quoted.stdout
    huge = world.mailer("optout", "import", world.dir / "huge.csv", check=False)
    assert huge.returncode == 1 and "cannot be read as CSV: field larger than field limit" in huge.stdout
    escape = world.mailer("optout", "import", world.dir / "escape.csv", check=False)
    assert escape.returncode == 1 and "reason: contains a control character U+001B" in escape.stdout
    assert "reason: spans more than one line" in escape.stdout
    assert world.query("SELECT phone FROM opt_out ORDER BY phone") == [("79001112252",), ("79001112256",)]
    added = world.mailer("optout", "add", "79001112257", "--reason", "a\x07b", check=False)
    assert added.returncode == 2 and added.stderr.startswith("error: reason: contains a control character")
    twice = world.mailer("optout", "add", "79001112258", " 79001112258")
    assert twice.stdout.strip() == "1 phone(s) put on the stop list"
    header = world.dir / "header.csv"
    header.write_text("phone,phone\n79001112259,79001112260\n", encoding="utf-8")
    refused = world.mailer("optout", "import", header, check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("error: file: header must be phone")
