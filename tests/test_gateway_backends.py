"""Each gateway backend end to end: real consumer processes sending through MAILER_GATEWAY=console
(nothing posted anywhere) and MAILER_GATEWAY=smsaero against `gateway-sim --protocol smsaero` on
127.0.0.1, judged from the database, the consumer's output, the log file and the simulator's log of
what it accepted. SMS Aero gets no id of ours: its duplicates are told apart by (phone, text), so
every mailing here has a text of its own."""
import json
from collections import Counter

import pytest

from simulator import read_log
from support import phones, wait_for
from test_engine import final, parse_utc

EMAIL, KEY = "ops@example.com", "aero-key-0123456789abcdef"


def console_lines(world):
    return [line for line in world.consumer_logs().splitlines() if line.startswith("console gateway: ")]


def log_records(world, msg):
    return [r for r in map(json.loads, (world.dir / "mailer.log").read_text().splitlines()) if r["msg"] == msg]


def sent_once_each(entries):
    """Every (phone, text) SMS Aero accepted, accepted once."""
    counts = Counter((e["phone"], e["text"]) for e in entries)
    assert not {k: n for k, n in counts.items() if n > 1}, f"delivered more than once: {counts}"
    return counts


# ---------------------------------------------------------------------------------------------------
# console


def test_console_writes_each_message_to_the_consumers_output_and_log_and_posts_nothing(world, simulator):
    # A probe simulator the consumer would reach if it posted anything: it must see no request.
    witness = simulator()
    world.use_gateway(witness)
    world.env["MAILER_GATEWAY"] = "console"
    numbers = phones(3)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in numbers])
    world.start_consumer()
    text = 'Sale [b]today[/b] [@click=app.quit]x[/] "quoted"\nsecond line'
    mailing = world.mailer_json("mailings", "create", "--text", text, "--start", "now", "--end", "+2m")
    wait_for(final(world, mailing["id"], 3), message="every message settled")
    assert world.statuses(mailing["id"]) == {"sent": 3}
    ids = dict(world.query("SELECT phone, id FROM message WHERE mailing_id = ?", mailing["id"]))
    # One line a message, the text literal (a JSON string: one line, nothing interpreted).
    assert sorted(console_lines(world)) == sorted(
        f"console gateway: message {ids[p]} to {p}: {json.dumps(text, ensure_ascii=False)}" for p in numbers)
    logged = log_records(world, "console message")
    assert sorted((r["message_id"], r["phone"], r["text"]) for r in logged) == sorted(
        (ids[p], p, text) for p in numbers)
    assert {r["request"]["method"] for r in log_records(world, "attempt")} == {"console"}
    assert world.query("SELECT DISTINCT http_status, error FROM attempt") == [(None, "")]
    assert witness.stats()["requests"] == 0
    health = world.mailer("health").stdout
    assert "gateway: console (nothing leaves this machine" in health, health
    assert [c["backend"] for c in world.mailer_json("health")["consumers"]] == ["console"]


@pytest.mark.xdist_group("timing")
def test_console_sends_nothing_at_or_after_the_end(world):
    """The console backend goes through the same end guard: under a cap of 2 a second, a mailing of
    4 s gets some of its 20 messages written, each before its end, and the rest expire unwritten."""
    world.env.update(MAILER_GATEWAY="console", MAILER_RATE="2")
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(20)])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "short", "--start", "now", "--end", "+4s")
    counts = wait_for(final(world, mailing["id"], 20), timeout=30, message="every message settled")
    assert set(counts) == {"sent", "expired"} and 0 < counts["sent"] < 20, counts
    end_at = parse_utc(world.query("SELECT end_at FROM mailing WHERE id = ?", mailing["id"])[0][0])
    sent = world.query("SELECT id, sent_at FROM message WHERE mailing_id = ? AND status = 'sent'", mailing["id"])
    assert all(parse_utc(at) < end_at for _, at in sent)
    # Written is sent: exactly the sent ones were written, the expired never.
    written = sorted(int(line.split()[3]) for line in console_lines(world))
    assert written == sorted(i for i, _ in sent)


# ---------------------------------------------------------------------------------------------------
# SMS Aero


def smsaero(simulator, **options):
    return simulator(protocol="smsaero", email=EMAIL, token=KEY, **options)


def test_smsaero_delivers_each_message_with_its_sign_and_logs_sms_aeros_id(world, simulator):
    sim = smsaero(simulator)
    world.use_gateway(sim)
    world.env["SMSAERO_SIGN"] = "Shop"
    numbers = phones(5)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in numbers])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "hello from smsaero", "--start", "now",
                                "--end", "+2m")
    wait_for(final(world, mailing["id"], 5), message="every message settled")
    assert world.statuses(mailing["id"]) == {"sent": 5}
    accepted = read_log(sim.log_path)
    assert sent_once_each(accepted) == Counter((int(p), "hello from smsaero") for p in numbers)
    assert {e["sign"] for e in accepted} == {"Shop"}
    # SMS Aero's id of each message is kept with its attempt in the log (`mailer logs --message`).
    attempts = log_records(world, "attempt")
    assert sorted(a["gateway_id"] for a in attempts) == sorted(str(e["id"]) for e in accepted)
    for a in attempts:
        assert a["request"]["url"] == f"{sim.url}/sms/send"
        assert a["request"]["authorization"] == f"Basic {EMAIL}:{KEY[:6]}…"
        assert a["request"]["json"]["sign"] == "Shop"
    shown = world.mailer("logs", "--message", attempts[0]["message_id"], "--json").stdout
    assert attempts[0]["gateway_id"] in shown
    # The key never leaves the environment.
    assert KEY not in (world.dir / "mailer.log").read_text() + world.consumer_logs()
    health = world.mailer("health")
    assert f"gateway: smsaero (local simulator {sim.url}, sign 'Shop', key {KEY[:6]}…" in health.stdout
    assert KEY not in health.stdout
    assert [c["backend"] for c in world.mailer_json("health")["consumers"]] == ["smsaero"]


def test_smsaero_refusing_the_key_pauses_sending_for_everyone(world, simulator):
    sim = smsaero(simulator)
    world.use_gateway(sim)
    world.env["SMSAERO_API_KEY"] = wrong = "aero-key-WRONG-987654321"
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(40)])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "wrong key", "--start", "now", "--end", "+5m")
    wait_for(lambda: world.query("SELECT reason FROM gateway_status WHERE paused_until IS NOT NULL"),
             message="the pause")
    reason = world.query("SELECT reason FROM gateway_status")[0][0]
    assert "refused the credentials" in reason and "SMSAERO_EMAIL and SMSAERO_API_KEY" in reason, reason
    assert wrong not in reason and wrong[7:] not in reason
    assert world.query("SELECT DISTINCT http_status FROM attempt") == [(401,)]
    assert world.statuses(mailing["id"]) == {"pending": 40}
    assert sim.stats()["accepted"] == 0


def test_smsaero_bad_number_fails_for_good_and_the_rest_go(world, simulator):
    numbers = phones(4)
    sim = smsaero(simulator, reject_phones=[numbers[1]])
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in numbers])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "bad number", "--start", "now", "--end", "+2m")
    wait_for(final(world, mailing["id"], 4), message="every message settled")
    assert world.statuses(mailing["id"]) == {"sent": 3, "failed": 1}
    (phone, error), = world.query("SELECT phone, last_error FROM message WHERE status = 'failed'")
    assert phone == numbers[1] and error.startswith("HTTP 400") and "number blocked" in error
    assert world.query("SELECT count(*) FROM attempt WHERE http_status = 400")[0][0] == 1  # not retried
    assert sorted(e["phone"] for e in read_log(sim.log_path)) == sorted(int(p) for i, p in enumerate(numbers) if i != 1)


@pytest.mark.xdist_group("timing")
def test_smsaero_503_with_retry_after_is_retried_after_it(world, simulator):
    sim = smsaero(simulator, retry_after=2, retry_after_503=True)
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(5)])
    world.start_consumer()
    sim.begin("outage", 600)
    mailing = world.mailer_json("mailings", "create", "--text", "after the outage", "--start", "now",
                                "--end", "+2m")
    wait_for(lambda: world.query("SELECT count(DISTINCT message_id) FROM attempt WHERE http_status = 503")[0][0] == 5,
             message="a 503 for every message")
    sim.end()  # the outage ends
    wait_for(final(world, mailing["id"], 5), timeout=60, message="every message settled")
    assert world.statuses(mailing["id"]) == {"sent": 5}
    sent_once_each(read_log(sim.log_path))
    rows = world.query("SELECT message_id, at, http_status FROM attempt ORDER BY message_id, id")
    gaps = [(parse_utc(at2) - parse_utc(at)).total_seconds()
            for (mid, at, status), (mid2, at2, _) in zip(rows, rows[1:]) if mid == mid2 and status == 503]
    # MAILER_RETRY_BASE is 0.5 s here: only the Retry-After makes every gap 2 s or more.
    assert len(gaps) >= 5 and min(gaps) >= 1.95, gaps


def settle_a_second_mailing(world, text, total):
    """A later mailing to the same clients, delivered: the witness that the consumer went on sending
    after the first one's attempts in doubt (and did not send those again meanwhile)."""
    later = world.mailer_json("mailings", "create", "--text", text, "--start", "now", "--end", "+2m")
    wait_for(final(world, later["id"], total), timeout=60, message="the second mailing settled")
    assert world.statuses(later["id"]) == {"sent": total}


@pytest.mark.xdist_group("timing")
def test_smsaero_read_timeout_is_in_doubt_and_not_sent_again(world, simulator):
    sim = smsaero(simulator, hang=5)
    world.use_gateway(sim)
    world.import_clients([(phones(1)[0], "", "", "Europe/Moscow")])
    world.start_consumer()
    sim.begin("timeout", 600)
    mailing = world.mailer_json("mailings", "create", "--text", "hangs", "--start", "now", "--end", "+2m")
    wait_for(final(world, mailing["id"], 1), timeout=30, message="the message settled")
    assert world.statuses(mailing["id"]) == {"unknown": 1}
    error = world.query("SELECT last_error FROM message WHERE mailing_id = ?", mailing["id"])[0][0]
    assert error.startswith("in doubt: ") and "timed out" in error.lower() and "MAILER_IN_DOUBT=hold" in error
    sim.end()  # the gateway answers again
    settle_a_second_mailing(world, "answered", 1)
    assert world.query("SELECT count(*) FROM attempt WHERE mailing_id = ?", mailing["id"])[0][0] == 1
    assert sim.stats()["faults"]["timeout"] == 1


def test_smsaero_garbage_200s_are_in_doubt_and_never_sent_twice(world, simulator):
    sim = smsaero(simulator)
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(3)])
    world.start_consumer()
    sim.begin("garbage", 600)
    mailing = world.mailer_json("mailings", "create", "--text", "garbled", "--start", "now", "--end", "+2m")
    wait_for(final(world, mailing["id"], 3), message="every message settled")
    assert world.statuses(mailing["id"]) == {"unknown": 3}
    errors = sorted(e for (e,) in world.query("SELECT last_error FROM message WHERE mailing_id = ?", mailing["id"]))
    # The three garbage answers: no JSON, nothing, and a success that names no message.
    assert all(e.startswith("in doubt: ") for e in errors), errors
    assert any("success without a message id" in e for e in errors), errors
    sim.end()
    settle_a_second_mailing(world, "clean", 3)
    assert world.query("SELECT count(*) FROM attempt WHERE mailing_id = ?", mailing["id"])[0][0] == 3
    assert sim.stats()["faults"]["garbage"] == 3
    assert {e["text"] for e in read_log(sim.log_path)} == {"clean"}


# ---------------------------------------------------------------------------------------------------
# settings


def test_gateway_settings_that_cannot_work_are_refused_at_start(world):
    world.env["MAILER_GATEWAY"] = "twilio"
    for command in (("consumer",), ("clients", "list")):
        result = world.mailer(*command, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert result.stderr == "error: MAILER_GATEWAY: must be probe or console or smsaero\n"
    world.env.update(MAILER_GATEWAY="smsaero", MAILER_IN_DOUBT="retry", SMSAERO_EMAIL=EMAIL, SMSAERO_API_KEY=KEY)
    result = world.mailer("clients", "list", check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: MAILER_IN_DOUBT: retry is refused with "
                                                               "MAILER_GATEWAY=smsaero")
    # Missing credentials: refused when something would send, before it starts.
    del world.env["MAILER_IN_DOUBT"], world.env["SMSAERO_EMAIL"], world.env["SMSAERO_API_KEY"]
    for command in (("consumer",), ("run", "--headless")):
        result = world.mailer(*command, check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        lines = result.stderr.splitlines()
        assert lines[0].startswith("error: SMSAERO_EMAIL: is not set") and lines[1].startswith(
            "error: SMSAERO_API_KEY: is not set"), lines
        assert "consumer started" not in result.stdout
    world.env.update(SMSAERO_EMAIL=EMAIL, SMSAERO_API_KEY=KEY + "\r")
    result = world.mailer("consumer", check=False)
    assert result.returncode == 2
    assert result.stderr == "error: SMSAERO_API_KEY: has white space around it (a line end from a CRLF env file?); remove it\n"
    # A command that sends nothing does not need them.
    del world.env["SMSAERO_API_KEY"]
    assert world.mailer("clients", "list").returncode == 0
