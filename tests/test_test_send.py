"""Test sends (issue 12, part 3), judged by the simulator's log and the database: the exact text
reaches only the test numbers, now, whatever the mailing's window, is recorded apart from its
messages with the gateway's answer, and leaves its statistics alone."""
import json

from support import phones, wait_for
from simulator import read_log

TEXT = "Скидка 10% [bold]только[/bold] сегодня"


def test_a_test_send_reaches_only_the_test_numbers_and_leaves_the_statistics_alone(world, simulator, running_mailing):
    sim = simulator(reject_phones=["79005550000"])
    world.use_gateway(sim)
    mailing, _ = running_mailing(3, text=TEXT)
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 3}, message="the mailing sent")
    before = json.loads(world.mailer("stats", mailing["id"]).stdout)
    result = world.mailer("mailings", "test", mailing["id"], "--to", "79991112233", "--to", "79005550000",
                          check=False)
    assert result.returncode == 1  # one number refused
    assert result.stdout.splitlines() == [
        "79991112233: sent (HTTP 200)",
        '79005550000: failed (HTTP 400): HTTP 400: {"code": 400, "message": "number blocked"}']
    tests = [e for e in read_log(sim.log_path) if e["phone"] == 79991112233]
    assert len(tests) == 1 and tests[0]["text"] == TEXT and tests[0]["id"] >= 10 ** 12
    assert {e["phone"] for e in read_log(sim.log_path)} == {int(p) for p in phones(3)} | {79991112233}
    assert json.loads(world.mailer("stats", mailing["id"]).stdout) == before
    assert world.query("SELECT phone, outcome, http_status FROM test_send ORDER BY id") == [
        ("79991112233", "sent", 200), ("79005550000", "failed", 400)]


def test_a_test_send_ignores_the_window_and_uses_the_default_numbers(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000001")
    mailing = world.mailer_json("mailings", "create", "--text", "later", "--start", "+1d", "--end", "+2d",
                                "--window", "03:00-03:01")
    world.env["MAILER_TEST_PHONES"] = "79991112233, 79991112244"
    assert world.mailer("mailings", "test", mailing["id"]).stdout.count(": sent (HTTP 200)") == 2
    assert sorted(e["phone"] for e in read_log(sim.log_path)) == [79991112233, 79991112244]
    assert world.statuses(mailing["id"]) == {}  # nothing materialized, nothing counted


def test_a_test_send_refuses_bad_numbers_before_sending_anything(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000001")
    mailing = world.mailer_json("mailings", "create", "--text", "x", "--start", "+1h", "--end", "+2h")
    for args, why in ((["--to", "12345"], "error: to: must be 7 followed by 10 digits"),
                      ([], "error: to: no number: give --to 79001234567 or set MAILER_TEST_PHONES")):
        result = world.mailer("mailings", "test", mailing["id"], *args, check=False)
        assert result.returncode == 2 and result.stderr.startswith(why), result.stderr
    result = world.mailer("mailings", "test", "999", "--to", "79991112233", check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: id: no mailing with id 999")
    assert read_log(sim.log_path) == [] and world.query("SELECT count(*) FROM test_send")[0][0] == 0


def test_deleting_a_mailing_that_sent_tests_keeps_them_and_no_msgid_comes_back(world, simulator):
    """A mailing that never started but sent a test is archived, not deleted: the test reached the
    gateway, and a later mailing must not take its id and with it the test's msgId (SQLite gives a
    deleted highest id again)."""
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000001")
    first = world.mailer_json("mailings", "create", "--text", "one", "--start", "+1h", "--end", "+2h")
    world.mailer("mailings", "test", first["id"], "--to", "79991112233")
    result = world.mailer("mailings", "delete", first["id"])
    assert "archived, not deleted: its 1 test send(s) went to the gateway" in result.stdout
    second = world.mailer_json("mailings", "create", "--text", "two", "--start", "+1h", "--end", "+2h")
    assert second["id"] != first["id"]
    world.mailer("mailings", "test", second["id"], "--to", "79991112244")
    received = [(e["id"], e["phone"], e["text"]) for e in read_log(sim.log_path)]
    assert len(received) == 2 and len({i for i, _, _ in received}) == 2, received
    assert world.query("SELECT mailing_id, phone FROM test_send ORDER BY id") == [
        (first["id"], "79991112233"), (second["id"], "79991112244")]
    # one that never started and sent nothing is deleted, as before
    third = world.mailer_json("mailings", "create", "--text", "three", "--start", "+1h", "--end", "+2h")
    assert "deleted (it never started)" in world.mailer("mailings", "delete", third["id"]).stdout
    assert world.query("SELECT count(*) FROM mailing WHERE id = ?", third["id"]) == [(0,)]
