"""Issue 13, parts 3 and 4 from the command line: `mailings clone` (a new mailing pre-filled from
another, or with --only a resend to the clients of its messages in those statuses) judged by what the
gateway simulator accepted, with a real consumer; `mailings delete` (a mailing that never started
goes, one that started is archived: hidden from lists, counted still)."""
import datetime as dt
import sqlite3

from support import phones, wait_for


def settled(world, mailing_id):
    wait_for(lambda: not world.query("SELECT count(*) FROM message WHERE mailing_id = ? AND status = 'pending'",
                                     mailing_id)[0][0] and world.statuses(mailing_id),
             timeout=60, message=f"every message of mailing {mailing_id} settled")


def arrived(sim, after=0):
    return sorted(str(m["phone"]) for m in sim.accepted[after:])


def test_clone_only_failed_reaches_exactly_those_phones_and_unknown_only_when_named(world, simulator):
    p = phones(6)
    refused = p[1:4]  # the gateway refuses these for good: failed
    first = simulator(reject_phones=refused)
    world.use_gateway(first)
    world.import_clients([(phone, "", "", "Europe/Moscow") for phone in p])
    consumer = world.start_consumer()
    source = world.mailer_json("mailings", "create", "--text", "sale", "--start", "now", "--end", "+2m",
                               "--window", "any")
    settled(world, source["id"])
    assert world.statuses(source["id"]) == {"sent": 3, "failed": 3}
    assert arrived(first) == sorted(p[:1] + p[4:])
    # One delivered message made in doubt, as a read timeout would leave it (the engine's own path to
    # `unknown` is tested in test_engine): a resend reaches it only when `unknown` is named.
    with sqlite3.connect(world.db_path) as conn:
        conn.execute("UPDATE message SET status = 'unknown', in_doubt = 1 WHERE mailing_id = ? AND phone = ?",
                     (source["id"], p[5]))
    world.mailer("optout", "add", refused[0])  # opted out since: left out
    (gone,) = world.query("SELECT id FROM client WHERE phone = ?", refused[1])[0]
    world.mailer("clients", "delete", gone)  # deleted since: left out

    dry = world.mailer_json("mailings", "clone", source["id"], "--only", "failed", "--dry-run")
    assert (dry["recipients"], dry["opted_out"], dry["only"], dry["cloned_from"]) == (1, 1, ["failed"], source["id"])
    assert "the clients of mailing" in world.mailer("mailings", "clone", source["id"], "--only", "failed",
                                                    "--dry-run").stdout
    assert world.mailer_json("mailings", "clone", source["id"], "--only", "failed,unknown",
                             "--dry-run")["recipients"] == 2
    world.stop(consumer)
    second = simulator()  # accepts everyone: what it receives is what the resends sent
    world.use_gateway(second)
    world.start_consumer()

    resend = world.mailer_json("mailings", "clone", source["id"], "--only", "failed")
    assert (resend["text"], resend["only"], resend["cloned_from"]) == ("sale", ["failed"], source["id"])
    settled(world, resend["id"])
    assert world.statuses(resend["id"]) == {"sent": 1}
    assert arrived(second) == [refused[2]]  # not the opted-out one, not the deleted one, not in doubt

    seen = len(second.accepted)
    both = world.mailer_json("mailings", "clone", source["id"], "--only", "failed,unknown")
    settled(world, both["id"])
    assert arrived(second, seen) == sorted([refused[2], p[5]])
    shown = world.mailer("mailings", "show", both["id"]).stdout
    assert f"a resend to the clients of mailing {source['id']}'s failed or in doubt messages" in shown


def test_clone_copies_the_fields_for_as_long_as_the_original_and_takes_overrides(world):
    world.mailer("clients", "add", "--phone", "79000000001", "--tag", "vip")
    source = world.mailer_json("mailings", "create", "--text", "hello", "--start", "+1h", "--end", "+3h",
                               "--tag", "vip", "--window", "09:00-21:00", "--days", "mon-fri", "--spread")
    clone = world.mailer_json("mailings", "clone", source["id"])
    assert {k: clone[k] for k in ("text", "tag", "window", "days", "spread", "state", "only")} == {
        "text": "hello", "tag": "vip", "window": "09:00-21:00", "days": "mon-fri", "spread": True,
        "state": "running", "only": None}
    start, end = (dt.datetime.fromisoformat(clone[k].rstrip("Z")) for k in ("start", "end"))
    assert end - start == dt.timedelta(hours=2) and clone["cloned_from"] == source["id"]
    other = world.mailer_json("mailings", "clone", source["id"], "--text", "bye", "--start", "+1d",
                              "--tag", "", "--spread", "off")
    assert (other["text"], other["tag"], other["spread"], other["state"]) == ("bye", None, False, "scheduled")
    assert "cloned from mailing" in world.mailer("mailings", "show", other["id"]).stdout
    results = world.mailer_batch([
        ("mailings", "clone", source["id"], "--only", "failed"),  # it never started: nothing to resend
        ("mailings", "clone", clone["id"], "--only", "sent"),
        ("mailings", "clone", "999"),
    ])
    assert [r.returncode for r in results] == [2, 2, 2]
    assert "never started: it has no messages to resend" in results[0].stderr
    assert results[1].stderr.startswith("error: only: must be statuses among failed, expired, cancelled, unknown")
    assert "no mailing with id 999" in results[2].stderr
    assert "--only" in world.mailer("mailings", "clone", "--help").stdout


def test_delete_removes_a_mailing_that_never_started_and_archives_one_that_did(world):
    world.mailer("clients", "add", "--phone", "79000000001")
    later = world.mailer_json("mailings", "create", "--text", "later", "--start", "+1h", "--end", "+2h")
    running = world.mailer_json("mailings", "create", "--text", "now", "--start", "now", "--end", "+1h")
    assert world.mailer("mailings", "delete", later["id"]).stdout.strip() == (
        f"mailing {later['id']} deleted (it never started)")
    assert world.query("SELECT count(*) FROM mailing WHERE id = ?", later["id"]) == [(0,)]

    refused = world.mailer("mailings", "delete", running["id"], check=False)
    assert refused.returncode == 2 and "is running; cancel it first" in refused.stderr
    world.mailer("mailings", "cancel", running["id"])
    done = world.mailer_json("mailings", "delete", running["id"])
    assert done == {"id": running["id"], "outcome": "archived", "messages": 1}
    assert world.mailer_json("mailings", "list") == []
    listed = world.mailer_json("mailings", "list", "--archived")
    assert [(m["id"], m["archived"]) for m in listed] == [(running["id"], True)]
    assert "cancelled (archived)" in world.mailer("mailings", "list", "--archived").stdout
    stats = world.mailer_json("stats", running["id"])
    assert (stats["archived"], stats["total"], stats["cancelled"]) == (True, 1, 1)  # still counted
    assert world.query("SELECT count(*) FROM message WHERE mailing_id = ?", running["id"]) == [(1,)]
    assert "cancelled, archived" in world.mailer("mailings", "show", running["id"]).stdout.splitlines()[0]
    again = world.mailer("mailings", "delete", running["id"], check=False)
    assert again.returncode == 2 and "archived already" in again.stderr
