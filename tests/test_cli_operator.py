"""The command line as a new operator meets it (issue 11): empty lists, partial lists that say so,
figures that add up, unknown ids refused, times that name their zone, and no database made up by a
command that only reads."""
import re

from support import wait_for


def test_a_reading_command_never_makes_up_an_empty_database(world):
    result = world.mailer("clients", "list", check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: database: there is none at ") and str(world.db_path) in result.stderr
    assert not world.db_path.exists()
    assert "MAILER_DB_URL" in world.mailer("--help").stdout


def test_empty_lists_are_empty_tables_not_tracebacks(world):
    world.mailer("clients", "add", "--phone", "79000000001")
    world.mailer("clients", "delete", "1")
    for args in (("clients", "list"), ("clients", "list", "--search", "nomatch"), ("mailings", "list")):
        result = world.mailer(*args)
        assert result.stdout.startswith("id ") and len(result.stdout.splitlines()) == 1, result.stdout
    mailing = world.mailer_json("mailings", "create", "--text", "x", "--start", "+1h", "--end", "+2h")
    shown = world.mailer("mailings", "show", mailing["id"], "--status", "failed").stdout
    assert "total=0" in shown and "Traceback" not in shown


def test_a_partial_list_says_how_much_is_left(world):
    for i in range(3):
        world.mailer("clients", "add", "--phone", f"7900000000{i}")
    text = world.mailer("clients", "list", "--limit", "2").stdout
    assert text.rstrip().endswith("(2 of 3 shown; --offset 2 for the next ones)")
    assert "shown" not in world.mailer("clients", "list", "--limit", "2", "--offset", "2").stdout
    assert len(world.mailer_json("clients", "list", "--limit", "2")) == 2
    assert "show at most this many rows" in world.mailer("clients", "list", "--help").stdout


def test_mailings_are_listed_newest_first_and_paged(world):
    world.mailer("clients", "add", "--phone", "79000000001")
    ids = [world.mailer_json("mailings", "create", "--text", f"m{i}", "--start", "+1h", "--end", "+2h")["id"]
           for i in range(3)]
    assert [m["id"] for m in world.mailer_json("mailings", "list")] == ids[::-1]
    assert [m["id"] for m in world.mailer_json("mailings", "list", "--limit", "1", "--offset", "1")] == [ids[1]]
    assert "(1 of 3 shown; --offset 1" in world.mailer("mailings", "list", "--limit", "1").stdout


def test_a_mailing_cancelled_before_it_started_should_reach_nobody_everywhere(world):
    for i in range(3):
        world.mailer("clients", "add", "--phone", f"7900000000{i}")
    mailing = world.mailer_json("mailings", "create", "--text", "never", "--start", "+1h", "--end", "+2h")
    assert world.mailer_json("stats", mailing["id"])["total"] == 3  # scheduled: whom it would reach
    world.mailer("mailings", "cancel", mailing["id"])
    stats = world.mailer_json("stats", mailing["id"])
    assert (stats["state"], stats["total"], stats["materialized"]) == ("cancelled", 0, 0)
    assert "total=0" in world.mailer("mailings", "show", mailing["id"]).stdout


def test_a_finished_mailing_cannot_be_cancelled(world, simulator):
    world.use_gateway(simulator())
    world.mailer("clients", "add", "--phone", "79000000001")
    mailing = world.mailer_json("mailings", "create", "--text", "short", "--start", "now", "--end", "+2s")
    world.start_consumer()
    wait_for(lambda: world.mailer_json("stats", mailing["id"])["state"] == "finished", timeout=30,
             message="the mailing to finish")
    result = world.mailer("mailings", "cancel", mailing["id"], check=False)
    assert result.returncode == 2 and "is finished; cannot cancel it" in result.stderr
    assert world.mailer_json("stats", mailing["id"])["state"] == "finished"


def test_logs_refuse_an_unknown_mailing_and_name_their_zone(world):
    world.mailer("clients", "add", "--phone", "79000000001")
    result = world.mailer("logs", "--mailing", "999", check=False)
    assert result.returncode == 2 and "error: id: no mailing with id 999" in result.stderr
    line = world.mailer("logs", "--client", "1").stdout.splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} Europe/Moscow ", line), line


def test_the_health_probe_makes_no_database(world):
    result = world.mailer("health", check=False)
    assert result.returncode == 1 and "no consumer has ever run" in result.stdout
    assert not world.db_path.exists()


def test_settings_that_cannot_work_are_refused_at_start(world):
    for var, value, says in (("MAILER_READ_TIMEOUT", "nan", "must be a finite number"),
                             ("MAILER_READ_TIMEOUT", "inf", "must be a finite number"),
                             ("MAILER_TZ", "Mars/Base", "unknown time zone 'Mars/Base'"),
                             ("PROBE_URL", "ftp://x", "must be an http:// or https:// URL"),
                             ("MAILER_FAIL_PAUSE_RATIO", "2", "must be at most 1")):
        world.env[var] = value
        for command in (("consumer",), ("clients", "list")):
            result = world.mailer(*command, check=False)
            assert result.returncode == 2, (var, command, result.stdout, result.stderr)
            assert result.stderr.startswith(f"error: {var}: ") and says in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
        del world.env[var]
    assert not world.db_path.exists()
