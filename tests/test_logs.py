"""Structured logs: actions and attempts with their ids, `mailer logs`, and no secret in them."""
import json

from support import phones, wait_for


def test_actions_and_attempts_are_logged_with_their_ids(world, simulator):
    sim = simulator(reject_phones=["79000000001"])
    world.use_gateway(sim)
    cid = int(world.mailer("clients", "add", "--phone", "79000000000", "--tag", "t").stdout)
    world.import_clients([(p, "", "t", "UTC") for p in phones(2, start=1)])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "hello", "--start", "now", "--end", "+5m")
    wait_for(lambda: not world.statuses(mailing["id"]).get("pending"), message="all settled")
    lines = [json.loads(line) for line in (world.dir / "mailer.log").read_text().splitlines()]
    by_msg = {}
    for record in lines:
        by_msg.setdefault(record["msg"], []).append(record)
    assert by_msg["client added"][0]["client_id"] == cid and by_msg["client added"][0]["actor"] == "cli"
    assert by_msg["clients imported"][0]["imported"] == 2
    assert by_msg["mailing created"][0]["mailing_id"] == mailing["id"]
    attempts = by_msg["attempt"]
    assert len(attempts) == 3 and {a["actor"] for a in attempts} == {"consumer"}
    for a in attempts:
        assert {"mailing_id", "message_id", "client_id", "outcome", "request"} <= set(a)
        assert a["request"]["authorization"] == "Bearer " + world.env["PROBE_TOKEN"][:6] + "…"
        assert a["request"]["json"]["id"] == a["message_id"]
    failed = [a for a in attempts if a["outcome"] == "failed"]
    assert len(failed) == 1 and failed[0]["http_status"] == 400 and "number blocked" in failed[0]["error"]
    assert world.env["PROBE_TOKEN"] not in (world.dir / "mailer.log").read_text()

    shown = [json.loads(line) for line in
             world.mailer("logs", "--message", failed[0]["message_id"], "--json").stdout.splitlines()]
    assert {r["source"] for r in shown} == {"log", "journal"}
    assert all(r["message_id"] == failed[0]["message_id"] for r in shown)
    text = world.mailer("logs", "--mailing", mailing["id"]).stdout
    assert "mailing created" in text and text.count("journal") == 3
    assert "client added" in world.mailer("logs", "--client", cid).stdout


def test_plain_text_logs(world):
    world.env["MAILER_LOG_FORMAT"] = "text"
    cid = int(world.mailer("clients", "add", "--phone", "79000000000").stdout)
    line = (world.dir / "mailer.log").read_text().strip()
    assert "client added" in line and f"client_id={cid}" in line and not line.startswith("{")
    assert f"client_id={cid}" in world.mailer("logs", "--client", cid).stdout
