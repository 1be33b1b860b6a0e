"""The simulator's SMS Aero protocol (simulator/protocols.py): real HTTP against an in-process server on
port 0, and `mailer gateway-sim --protocol smsaero` as its own process."""
import os
import re
import select
import signal
import subprocess

import pytest
import requests

from simulator import read_log
from support import MAILER, ROOT

EMAIL, KEY = "ops@example.com", "aero-key-0123456789abcdef"
PHONE = 79001234567


# requests honours *_PROXY from the environment, even for 127.0.0.1 (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("no_proxy")


@pytest.fixture
def aero(simulator):
    def start(**options):
        return simulator(protocol="smsaero", email=EMAIL, token=KEY, **options)
    return start


def post(sim, body=None, auth=(EMAIL, KEY), form=None):
    """POST /sms/send with `body` as JSON (default: a good one), or `form` form-encoded."""
    payload = {"data": form} if form is not None else {
        "json": {"number": PHONE, "text": "hello", "sign": "SMS Aero"} if body is None else body}
    with requests.Session() as s:
        s.trust_env = False
        return s.post(f"{sim.url}/sms/send", auth=auth, timeout=5, **payload)


def test_a_message_is_accepted_with_sms_aeros_answer_and_logged(aero):
    sim = aero()
    assert sim.url.endswith("/v2")
    first, second = post(sim), post(sim, {"number": str(PHONE + 1), "text": "привет", "sign": "Shop"})
    assert first.status_code == second.status_code == 200
    one, two = first.json(), second.json()
    assert one["success"] is True and one["message"] is None
    assert (one["data"]["number"], one["data"]["text"], one["data"]["from"], one["data"]["extendStatus"]) == (
        str(PHONE), "hello", "SMS Aero", "queue")
    assert two["data"]["id"] == one["data"]["id"] + 1  # each message its own id
    logged = read_log(sim.log_path)
    assert [(e["id"], e["phone"], e["text"], e["sign"]) for e in logged] == [
        (one["data"]["id"], PHONE, "hello", "SMS Aero"), (two["data"]["id"], PHONE + 1, "привет", "Shop")]
    assert all(e["received_at"] <= e["answered_at"] for e in logged)
    # Form-encoded, as some of SMS Aero's own clients send, is taken too.
    form = post(sim, form={"number": str(PHONE + 2), "text": "form", "sign": "SMS Aero"})
    assert form.status_code == 200 and form.json()["data"]["number"] == str(PHONE + 2)


def test_duplicates_are_counted_by_phone_and_text(aero):
    sim = aero()
    for text in ("a", "a", "b"):
        assert post(sim, {"number": PHONE, "text": text, "sign": "S"}).status_code == 200
    stats = sim.stats()
    assert (stats["accepted"], stats["unique_accepted_ids"], stats["duplicate_accepted_ids"]) == (3, 2, 1)


@pytest.mark.parametrize("auth", [None, (EMAIL, "wrong-key-123456"), ("other@example.com", KEY)])
def test_wrong_or_missing_credentials_are_401_in_sms_aeros_json(aero, auth):
    sim = aero()
    answer = post(sim, auth=auth)
    assert answer.status_code == 401 and answer.json()["success"] is False and answer.json()["message"]
    assert sim.stats()["accepted"] == 0


@pytest.mark.parametrize("body, why", [
    ({"text": "x", "sign": "S"}, "number"),
    ({"number": "7900abc", "text": "x", "sign": "S"}, "number"),
    ({"number": True, "text": "x", "sign": "S"}, "number"),
    ({"number": PHONE, "text": " ", "sign": "S"}, "text"),
    ({"number": PHONE, "text": "x"}, "sign"),
    ([1], "JSON object"),
])
def test_a_bad_body_is_400_and_not_accepted(aero, body, why):
    sim = aero()
    answer = post(sim, body)
    assert answer.status_code == 400 and answer.json()["success"] is False and why in answer.json()["message"]
    assert sim.stats()["accepted"] == 0


def test_faults_answer_in_sms_aeros_json_with_the_same_statuses(aero):
    sim = aero(reject_phones=[PHONE], retry_after=7, retry_after_503=True)
    rejected = post(sim)
    assert rejected.status_code == 400 and rejected.json() == {"success": False, "data": None,
                                                               "message": "number blocked"}
    sim.begin("outage", 60)
    down = post(sim, {"number": PHONE + 1, "text": "x", "sign": "S"})
    assert down.status_code == 503 and down.headers["Retry-After"] == "7" and down.json()["success"] is False
    sim.end()
    sim.begin("throttle", 60)
    assert post(sim, {"number": PHONE + 1, "text": "x", "sign": "S"}).headers["Retry-After"] == "7"
    sim.end()
    assert post(sim, {"number": PHONE + 1, "text": "x", "sign": "S"}).status_code == 200
    assert sim.stats()["faults"]["outage"] == 1 and sim.stats()["faults"]["throttle"] == 1


def test_the_probe_protocol_sends_no_retry_after_with_a_503_unless_asked(simulator):
    sim = simulator()
    sim.begin("outage", 60)
    with requests.Session() as s:
        s.trust_env = False
        answer = s.post(f"{sim.url}/send/1", json={"id": 1, "phone": PHONE, "text": "x"},
                        headers={"Authorization": f"Bearer {sim.token}"}, timeout=5)
    assert answer.status_code == 503 and "Retry-After" not in answer.headers


def test_mailer_gateway_sim_speaks_sms_aero(tmp_path):
    log = tmp_path / "accepted.jsonl"
    proc = subprocess.Popen(MAILER + ["gateway-sim", "--protocol", "smsaero", "--port", "0", "--email", EMAIL,
                                      "--api-key", KEY, "--log", str(log)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT)})
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no listening line within 30 s"
        line = proc.stdout.readline().decode("utf-8")
        m = re.fullmatch(rf"gateway-sim \(smsaero\) listening on (http://127\.0\.0\.1:\d+/v2) "
                         rf"email={re.escape(EMAIL)} api-key={KEY[:6]}\u2026\n", line)
        assert m, line
        with requests.Session() as s:
            s.trust_env = False
            answer = s.post(f"{m.group(1)}/sms/send", json={"number": PHONE, "text": "x", "sign": "S"},
                            auth=(EMAIL, KEY), timeout=5)
        assert answer.status_code == 200 and answer.json()["success"] is True
        assert [e["phone"] for e in read_log(log)] == [PHONE]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
