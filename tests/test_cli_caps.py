"""Throughput caps from the command line (issue 12, part 4): `mailings create --dry-run` says what the
caps (MAILER_RATE, MAILER_RATE_OPERATOR, MAILER_RATE_UNIT) would leave out of the audience before
the end, in its text and its JSON, the same figures as the console's editor (domain.mailings)."""


def clients(world):
    """30 clients of operator 900 (one of them on the stop list) and 10 of 916."""
    world.import_clients([(f"790000000{i}", "900", "", "Europe/Moscow") for i in range(10, 40)]
                         + [(f"791600000{i}", "916", "", "Europe/Moscow") for i in range(10, 20)])
    world.mailer("optout", "add", "79000000010")


def dry_run(world, *args):
    return world.mailer("mailings", "create", "--text", "hi", "--start", "now", "--end", "+10m",
                        "--dry-run", *args).stdout


def test_a_dry_run_says_what_the_total_cap_leaves_out(world):
    clients(world)
    world.env["MAILER_RATE"] = "0.05"
    out = dry_run(world)
    assert "recipients now: 39 (40 match, 1 of them opted out)" in out
    # 39 at 0.05/s: 780 s; 600 s let 30 through
    assert ("throughput cap: at the cap of 0.05 messages/s the 39 recipients need 13 min; the mailing "
            "has 10 min: about 9 would not go") in out
    data = world.mailer_json("mailings", "create", "--text", "hi", "--start", "now", "--end", "+10m", "--dry-run")
    assert data["caps"] == "0.05 messages/s in all"
    assert {k: data["cap_shortfall"][k] for k in ("needed_seconds", "would_not_go", "recipients", "cap",
                                                  "unit", "operator")} == {
        "needed_seconds": 780.0, "would_not_go": 9, "recipients": 39, "cap": 0.05, "unit": "messages",
        "operator": None}
    assert 599 <= data["cap_shortfall"]["seconds"] <= 600  # (max(start, now) to the end)
    assert world.query("SELECT count(*) FROM mailing")[0][0] == 0
    # enough time: nothing said
    world.env["MAILER_RATE"] = "1"
    assert "throughput cap" not in dry_run(world)
    assert world.mailer_json("mailings", "create", "--text", "hi", "--start", "now", "--end", "+10m",
                             "--dry-run")["cap_shortfall"] is None


def test_an_operator_cap_is_named_counted_by_operator_and_in_segments(world):
    clients(world)
    world.env["MAILER_RATE_OPERATOR"] = "900=0.02,916=1"
    out = dry_run(world, "--window", "09:00-21:00")
    # 900's 29 (the opted-out one left out) at 0.02/s: 1,450 s; 12 go in 600 s; every one of 916's
    assert ("throughput cap: at operator 900's cap of 0.02 messages/s its 29 recipients need 24 min 10 s; "
            "the mailing has 10 min: about 17 of the 39 recipients would not go (not counting its "
            "window, which leaves it less time)") in out
    world.env["MAILER_RATE_UNIT"] = "segments"
    data = world.mailer_json("mailings", "create", "--text", "Ж" * 71, "--start", "now", "--end", "+10m",
                             "--operator", "900", "--dry-run")
    short = data["cap_shortfall"]
    # two parts each: 6 messages in 600 s at 0.02 parts/s
    assert (short["operator"], short["unit"], short["recipients"], short["would_not_go"]) == ("900", "segments", 29, 23)
    assert short["text"].startswith("at operator 900's cap of 0.02 segments/s its 29 recipients (2 parts each) "
                                    "need 48 min 20 s")
