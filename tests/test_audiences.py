"""Richer audiences (issue 13, part 1), judged from outside: the command line's output and exit codes,
and for the filter, what the gateway simulator accepted from a real consumer. A client has several
tags (the CSV's `tags` column, `--tag` given again); a mailing reaches operators any of, tags any of,
all of, none of, and leaves out the clients messaged by any mailing in the last N hours."""
import json

from support import wait_for

# phone -> (operator, tag, more tags); what the filter below makes of each
CLIENTS = {
    "79000000000": ("900", "vip", "gold;plus"),          # yes
    "79160000001": ("916", "new", "gold;plus"),          # yes
    "79260000002": ("926", "vip", "gold;plus"),          # another operator
    "79000000003": ("900", "vip", "gold"),               # not all of gold, plus
    "79000000004": ("900", "", "gold;plus"),             # neither vip nor new
    "79160000005": ("916", "vip", "gold;plus;blocked"),  # blocked
    "79000000006": ("900", "new", "gold;plus;recent"),   # messaged by the first mailing
    "79000000007": ("900", "", "vip;plus;gold"),         # yes: its tags from the tags column only
    "79000000008": ("900", "new", "gold; plus"),         # yes
}
FILTER = ["--operator", "900", "--operator", "916", "--tag", "vip", "--tag", "new", "--all-tags", "gold,plus",
          "--not-tag", "blocked", "--skip-recent", "24h"]
EXPECTED = {"79000000000", "79160000001", "79000000007", "79000000008"}


def import_csv(world, text):
    path = world.dir / "clients.csv"
    path.write_text(text, encoding="utf-8")
    return world.mailer("clients", "import", path, check=False)


def accepted(sim):
    """[(phone, text)] the gateway accepted, in order."""
    try:
        lines = open(sim.log_path, encoding="utf-8").read().splitlines()
    except FileNotFoundError:
        return []
    return [(str(json.loads(line)["phone"]), json.loads(line)["text"]) for line in lines]


def settled(world, mailing_id):
    return lambda: world.query("SELECT count(*) FROM message WHERE mailing_id = ? AND status = 'pending'",
                               mailing_id)[0][0] == 0


def test_the_gateway_receives_exactly_the_filtered_audience(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    rows = "".join(f"{p},{op},{tag},Europe/Moscow,{more}\n" for p, (op, tag, more) in CLIENTS.items())
    assert import_csv(world, "phone,operator,tag,tz,tags\n" + rows).returncode == 0
    world.start_consumer()
    first = world.mailer_json("mailings", "create", "--text", "first", "--start", "now", "--end", "+5m",
                              "--window", "any", "--tag", "recent")
    wait_for(settled(world, first["id"]), timeout=30, message="the first mailing settled")
    preview = world.mailer_json("mailings", "create", "--text", "second", "--start", "now", "--end", "+5m",
                                "--window", "any", *FILTER, "--dry-run")
    assert preview["recipients"] == len(EXPECTED)
    assert preview["filter"] == {"operators": ["900", "916"], "tags": ["vip", "new"], "all_tags": ["gold", "plus"],
                                 "not_tags": ["blocked"], "skip_recent": "24h"}
    second = world.mailer_json("mailings", "create", "--text", "second", "--start", "now", "--end", "+5m",
                               "--window", "any", *FILTER)
    wait_for(settled(world, second["id"]), timeout=30, message="the second mailing settled")
    got = accepted(sim)
    assert [p for p, text in got if text == "first"] == ["79000000006"]
    second_phones = [p for p, text in got if text == "second"]
    assert sorted(second_phones) == sorted(EXPECTED)  # each once, nobody else
    shown = world.mailer("mailings", "show", second["id"]).stdout
    assert ("filter: operator 900 or 916, tag vip or new, tags all of gold, plus, not tag blocked, "
            "not messaged in 24h; window -") in shown
    listed = world.mailer("mailings", "list").stdout
    assert "operator 900 or 916, tag vip or new" in listed


def test_clients_keep_several_tags_through_add_edit_import_and_export(world):
    added = world.mailer_json("clients", "add", "--phone", "79000000001", "--tag", "vip", "--tag", "new")
    assert (added["tag"], added["tags"]) == ("vip", ["vip", "new"])
    edited = world.mailer_json("clients", "edit", added["id"], "--tag", "gold")
    assert edited["tags"] == ["gold"]
    # an old CSV (no tags column) still imports; a tags column adds more
    assert import_csv(world, "phone,operator,tag,tz\n79000000002,900,old,UTC\n").returncode == 0
    assert import_csv(world, "phone,tag,tags\n79000000003,,a;b\n79000000004,c,c; d\n").returncode == 0
    exported = world.mailer("clients", "export").stdout
    assert exported.splitlines() == ["phone,operator,tag,tz,tags,name", "79000000001,900,gold,Europe/Moscow,,",
                                     "79000000002,900,old,UTC,,", "79000000003,900,a,Europe/Moscow,b,",
                                     "79000000004,900,c,Europe/Moscow,d,"]
    listed = {c["phone"]: c["tags"] for c in world.mailer_json("clients", "list")}
    assert listed == {"79000000001": ["gold"], "79000000002": ["old"], "79000000003": ["a", "b"],
                      "79000000004": ["c", "d"]}
    # the export imports back as it was
    for client in world.mailer_json("clients", "list"):
        world.mailer("clients", "delete", client["id"])
    assert import_csv(world, exported).returncode == 0
    assert {c["phone"]: c["tags"] for c in world.mailer_json("clients", "list")} == listed
    assert world.mailer_json("clients", "list", "--search", "b")[0]["phone"] == "79000000003"  # any tag


def test_bad_filters_and_tags_are_refused_with_their_field(world):
    world.mailer("clients", "add", "--phone", "79000000001", "--tag", "vip")
    create = ["mailings", "create", "--text", "hi", "--start", "now", "--end", "+1h"]
    for flags, error in (
            (["--tag", "nope"], "error: tag: no client has tag 'nope'; known: vip\n"),
            (["--tag", "vip", "--tag", "nope"], "error: tag: no client has tag 'nope'; known: vip\n"),
            (["--all-tags", "vip,nope"], "error: all_tags: no client has tag 'nope'; known: vip\n"),
            (["--not-tag", "nope"], "error: not_tags: no client has tag 'nope'; known: vip\n"),
            (["--operator", "900", "--operator", "12"], "error: operator: must be 3 digits, like 900; got '12'\n"),
            (["--skip-recent", "soon"], "error: skip_recent: must be a duration like 24h, 90m, 2d or 1w; "
                                        "got 'soon'\n"),
            (["--skip-recent", "400d"], "error: skip_recent: must be between 1m and 365d; got '400d'\n")):
        result = world.mailer(*create, *flags, check=False)
        assert (result.returncode, result.stderr) == (2, error), flags
    assert world.query("SELECT count(*) FROM mailing")[0][0] == 0
    result = world.mailer("clients", "add", "--phone", "79000000002", "--tag", "a", "--tag", "b;c", check=False)
    assert (result.returncode, result.stderr) == (2, "error: tag: 'b;c' contains ';', which separates tags\n")
    result = import_csv(world, "phone,tags\n79000000003,ok;" + "x" * 65 + "\n79000000004,fine\n")
    assert result.returncode == 1 and "line 2: tags: is 65 characters; at most 64" in result.stdout
    # an edit clears a filter's part with ''
    mailing = world.mailer_json(*create[:2], "--text", "hi", "--start", "+1h", "--end", "+2h", "--tag", "vip",
                                "--skip-recent", "2d")
    edited = world.mailer_json("mailings", "edit", mailing["id"], "--tag", "", "--not-tag", "vip")
    assert edited["filter"] == {"operators": [], "tags": [], "all_tags": [], "not_tags": ["vip"],
                                "skip_recent": "48h"}
