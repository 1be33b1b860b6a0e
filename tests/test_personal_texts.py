"""Personal texts from the command line through a real consumer (issue 13, part 2): clients with a
name and attributes imported and edited by `mailer`, a mailing naming them sent by a consumer process
to the gateway simulator, each client's rendering judged from what the simulator received and
compared with what the database recorded; and every refusal: a clear message, exit 2, nothing written."""
from support import wait_for
from simulator import read_log
from test_cli import refused_all


def test_each_client_receives_its_own_text_through_a_consumer(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    csv = world.dir / "personal.csv"
    csv.write_text("phone,name,tz,city,last_order\n"
                   "79000000001,Анна,Europe/Moscow,Омск,A-17\n"
                   "79000000002,Bob,Europe/Moscow,,B-2\n"
                   "79000000003,,Europe/Moscow,Tver,\n", encoding="utf-8")
    assert "imported 3 of 3" in world.mailer("clients", "import", csv).stdout
    bob = world.mailer_json("clients", "list", "--search", "Bob")[0]
    assert bob["name"] == "Bob" and bob["attrs"] == {"last_order": "B-2"}
    edited = world.mailer_json("clients", "edit", bob["id"], "--attr", "city=Тула", "--attr", "last_order=")
    assert edited["attrs"] == {"city": "Тула"}
    world.start_consumer()
    text = "{name|Клиент}, заказ {attr.last_order|без номера} ждёт в {attr.city}. {{STOP}}"
    mailing = world.mailer_json("mailings", "create", "--text", text, "--start", "now", "--end", "+10m")
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == 3, timeout=30, message="3 sent")
    received = {e["phone"]: e["text"] for e in read_log(sim.log_path)}
    assert received == {
        79000000001: "Анна, заказ A-17 ждёт в Омск. {STOP}",
        79000000002: "Bob, заказ без номера ждёт в Тула. {STOP}",
        79000000003: "Клиент, заказ без номера ждёт в Tver. {STOP}",
    }
    recorded = dict(world.query("SELECT CAST(phone AS INTEGER), text FROM message WHERE mailing_id = ?",
                                mailing["id"]))
    assert recorded == received
    # The directory goes out and comes back with its names and attributes.
    exported = world.mailer("clients", "export").stdout.splitlines()
    assert exported[0] == "phone,operator,tag,tz,tags,name,city,last_order"
    assert "79000000001,900,,Europe/Moscow,,Анна,Омск,A-17" in exported


def test_refusals_of_names_attributes_and_placeholders(world):
    world.mailer("clients", "add", "--phone", "79001234567", "--name", "Ann", "--attr", "city=Omsk")
    refused_all(world, [
        (("clients", "add", "--phone", "79001234568", "--attr", "City=Omsk"),
         "error: attr: attribute key 'City' must be 1-32 of a-z, 0-9 and _"),
        (("clients", "add", "--phone", "79001234568", "--attr", "city"),
         "error: attr: must be key=value, like city=Omsk; got 'city'"),
        # a client's own field as an attribute would make the directory's export a header with
        # that column twice, which no import takes back
        (("clients", "add", "--phone", "79001234568", "--attr", "name=v"),
         "error: attr: attribute key 'name' is a client's own field"),
        (("clients", "edit", "1", "--attr", "tags=a"), "error: attr: attribute key 'tags' is a client's own field"),
        # a placeholder nobody in the audience has, without a default, would send the text without
        # it to everyone ({attr.ctiy} alone: empty messages)
        (("mailings", "create", "--text", "{attr.ctiy}", "--start", "now", "--end", "+1h"),
         "error: text: no client the filter matches has a value for {attr.ctiy}: give it a default "
         "({attr.ctiy|…}) or check its name"),
        (("clients", "add", "--phone", "79001234568", "--name", "x" * 101), "error: name: is 101 characters"),
        (("clients", "edit", "1", "--name", "a\x1b[31m"), "error: name: contains a control character U+001B"),
        (("clients", "edit", "1", "--attr", "city=" + "y" * 201), "error: attr: city: is 201 characters"),
        (("mailings", "create", "--text", "Hi {nmae}!", "--start", "now", "--end", "+1h"),
         "error: text: unknown placeholder {nmae}: use {name} or {attr.KEY}"),
        (("mailings", "create", "--text", "Hi {attr.City}!", "--start", "now", "--end", "+1h", "--dry-run"),
         "error: text: unknown placeholder {attr.City}"),
    ])
    bad = world.dir / "bad.csv"
    bad.write_text("phone,Home City\n79000000001,x\n")
    refused_all(world, [(("clients", "import", bad), "error: file: column 'home city' is neither")])


def test_a_dry_run_counts_parts_on_the_longest_rendering(world):
    world.mailer("clients", "add", "--phone", "79001234567", "--name", "Bartholomew-Alexander")
    world.mailer("clients", "add", "--phone", "79001234568", "--name", "Bo", "--tag", "short")
    text = "Hi {name}! " + "x" * 140  # 151 characters and the name: 2 parts for the long one
    everyone = world.mailer_json("mailings", "create", "--text", text, "--start", "now", "--end", "+1h",
                                 "--dry-run")
    assert everyone["personal"] and everyone["parts_per_message"] == 2 and everyone["parts"] == 4
    short = world.mailer_json("mailings", "create", "--text", text, "--start", "now", "--end", "+1h",
                              "--tag", "short", "--dry-run")
    assert short["parts_per_message"] == 1 and short["characters"] == 147
    assert world.query("SELECT count(*) FROM mailing") == [(0,)]


def test_a_placeholder_nobody_has_is_taken_with_a_default_or_before_there_are_clients(world):
    # before any client: the audience may still come, so the text is taken
    world.mailer("mailings", "create", "--text", "Hi {attr.city}", "--start", "+1h", "--end", "+2h")
    world.mailer("clients", "add", "--phone", "79001234567", "--tag", "a")
    world.mailer("clients", "add", "--phone", "79001234568", "--tag", "b", "--attr", "city=Omsk")
    world.mailer("mailings", "create", "--text", "Hi {attr.city}", "--start", "+1h", "--end", "+2h")
    world.mailer("mailings", "create", "--text", "Hi {attr.city|there}", "--tag", "a",
                 "--start", "+1h", "--end", "+2h")
    refused = world.mailer("mailings", "create", "--text", "Hi {attr.city}", "--tag", "a",
                           "--start", "+1h", "--end", "+2h", check=False)
    assert refused.returncode == 2 and "no client the filter matches has a value for {attr.city}" in refused.stderr
