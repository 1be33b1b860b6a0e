"""SMS parts and cost from the command line (issue 12, part 2): a dry run writes nothing and says
what a mailing would cost; a text of more parts than MAILER_MAX_PARTS needs --confirm-parts; stats
and the report count the parts the gateway accepted, checked against the simulator's log."""
import json

from support import wait_for

CYRILLIC_71 = "Ж" * 71  # UCS-2: 67 + 4, two parts


def test_a_dry_run_says_parts_and_cost_and_writes_nothing(world):
    world.import_clients([(f"7900000000{i}", "", "", "Europe/Moscow") for i in range(3)])
    world.env["MAILER_SEGMENT_PRICE"] = "0.35 RUB"
    before = world.query("SELECT count(*) FROM mailing")[0][0]
    out = world.mailer("mailings", "create", "--text", CYRILLIC_71, "--start", "+1h", "--end", "+2h",
                       "--dry-run").stdout
    assert "nothing was written" in out
    assert "text: 71 character(s), UCS-2 (because of «Ж»), 2 parts" in out
    assert "recipients now: 3" in out and "parts in all: 6, cost 2.10 RUB" in out
    data = world.mailer_json("mailings", "create", "--text", "a" * 160 + "€", "--start", "+1h",
                             "--end", "+2h", "--dry-run")
    assert (data["encoding"], data["parts_per_message"], data["parts"], data["cost"], data["currency"]) == (
        "GSM-7", 2, 6, "2.10", "RUB")
    assert world.query("SELECT count(*) FROM mailing")[0][0] == before == 0


def test_a_text_of_too_many_parts_needs_confirming(world):
    world.import_clients([("79000000001", "", "", "Europe/Moscow")])
    world.env["MAILER_MAX_PARTS"] = "1"
    refused = world.mailer("mailings", "create", "--text", CYRILLIC_71, "--start", "+1h", "--end", "+2h",
                           check=False)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: text: 71 character(s), UCS-2 (because of «Ж»), 2 parts: "
                                     "more than MAILER_MAX_PARTS (1)")
    assert world.query("SELECT count(*) FROM mailing")[0][0] == 0
    mailing = world.mailer_json("mailings", "create", "--text", CYRILLIC_71, "--start", "+1h", "--end",
                                "+2h", "--confirm-parts")
    # confirmed once: changing something else does not ask again; a new long text does
    world.mailer("mailings", "edit", mailing["id"], "--end", "+3h")
    again = world.mailer("mailings", "edit", mailing["id"], "--text", CYRILLIC_71 + "Ж", check=False)
    assert again.returncode == 2 and again.stderr.startswith("error: text: 72 character(s)")
    assert world.query("SELECT text FROM mailing")[0][0] == CYRILLIC_71


def test_a_bad_price_is_refused_by_name(world):
    world.env["MAILER_SEGMENT_PRICE"] = "cheap"
    result = world.mailer("clients", "add", "--phone", "79000000001", check=False)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: MAILER_SEGMENT_PRICE: must be a price per part such as "
                                     "0.35 RUB, in the digits 0-9 (got 'cheap')")


def test_stats_and_the_report_count_the_parts_the_gateway_accepted(world, simulator, running_mailing):
    sim = simulator(reject_phones=["79000000002"])
    world.use_gateway(sim)
    world.env["MAILER_SEGMENT_PRICE"] = "0.50 EUR"
    mailing, _ = running_mailing(4, text=CYRILLIC_71)
    wait_for(lambda: world.query("SELECT count(*) FROM message WHERE status = 'pending'")[0][0] == 0,
             timeout=60, message="every message settled")
    accepted = [json.loads(line) for line in open(sim.log_path, encoding="utf-8")]
    sent = world.query("SELECT count(*) FROM message WHERE status = 'sent'")[0][0]
    assert sent == len(accepted) == 3 and all(a["text"] == CYRILLIC_71 for a in accepted)
    row = json.loads(world.mailer("stats", mailing["id"]).stdout)
    # the refused message is never billed: the total counts what was sent or may still go
    assert (row["encoding"], row["parts_per_message"], row["parts_sent"], row["parts_total"]) == (
        "UCS-2", 2, 6, 6)
    assert (row["cost_sent"], row["cost_total"], row["currency"]) == ("3.00", "3.00", "EUR")
    report = world.mailer("report").stdout
    assert "SMS parts sent" in report and "Cost of the SMS parts sent: 3.00 EUR" in report
