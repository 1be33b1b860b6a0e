"""What each backend makes of an answer, without a socket: SMS Aero's 200s and refusals, its
credentials checked and kept out of what is shown, the console's line, and the backend
MAILER_GATEWAY picks."""
import io
import json
import time

import pytest

from domain.settings import Settings
from domain.validation import ValidationError
from engine.gateways import gateway_from_settings
from engine.gateways.console import ConsoleGateway
from engine.gateways.probe import ProbeGateway
from engine.gateways.smsaero import SmsAeroGateway, check_credentials

pytestmark = pytest.mark.unit

EMAIL, KEY = "ops@example.com", "aero-key-0123456789abcdef"


def aero(url="https://gate.smsaero.ru/v2"):
    return SmsAeroGateway(url, EMAIL, KEY, "SMS Aero")


@pytest.mark.parametrize("body, outcome, ref", [
    ('{"success": true, "data": {"id": 686325, "status": 0, "extendStatus": "queue"}, "message": null}',
     "sent", "686325"),
    ('{"success": true, "data": {"id": "686326"}}', "sent", "686326"),
    ('{"success": false, "data": null, "message": "no credits"}', "retry", ""),
    ('{"success": true, "data": null, "message": null}', "doubt", ""),
    ('{"success": true, "data": {"id": true}}', "doubt", ""),
    ('{"success": true, "data": [{"id": 1}]}', "doubt", ""),
    ('{"success": "yes", "data": {"id": 1}}', "doubt", ""),
    ('<html>oops', "doubt", ""),
    ('', "doubt", ""),
    ('[1, 2]', "doubt", ""),
])
def test_sms_aeros_200_answers(body, outcome, ref):
    verdict = aero()._answer_200(body, time.monotonic())
    assert (verdict.outcome, verdict.http_status, verdict.ref, verdict.halt) == (outcome, 200, ref, False)
    assert (verdict.error == "") == (outcome == "sent")


@pytest.mark.parametrize("status, outcome, halt", [
    (400, "failed", False), (404, "failed", False), (422, "failed", False),
    (401, "retry", True), (402, "retry", True), (403, "retry", True),
])
def test_sms_aeros_refusals(status, outcome, halt):
    verdict = aero()._refusal(status, f"HTTP {status}: {{}}", time.monotonic())
    assert (verdict.outcome, verdict.http_status, verdict.halt) == (outcome, status, halt)


def test_the_pause_says_what_the_operator_fixes():
    """No money is not a credentials problem: the pause asks for a top-up, not for new keys."""
    gateway = aero()
    broke = gateway.pause_reason(gateway._refusal(402, "HTTP 402: {}", time.monotonic()))
    assert "top up the SMS Aero account" in broke and "SMSAERO_API_KEY" not in broke
    refused = gateway.pause_reason(gateway._refusal(401, "HTTP 401: {}", time.monotonic()))
    assert "set a valid SMSAERO_EMAIL and SMSAERO_API_KEY" in refused and "credentials refused" in refused
    probe = ProbeGateway("http://127.0.0.1:9/v1", "token-0123456789")
    assert "set a valid PROBE_TOKEN" in probe.pause_reason(gateway._refusal(401, "HTTP 401", time.monotonic()))


def test_sms_aeros_key_is_scrubbed_from_errors_and_masked_where_shown():
    import base64
    gateway = aero()
    basic = base64.b64encode(f"{EMAIL}:{KEY}".encode()).decode()
    verdict = gateway._verdict("retry", 500, time.monotonic(), f"HTTP 500: echo {KEY} and Basic {basic}")
    assert KEY not in verdict.error and KEY[6:13] not in verdict.error and basic[:20] not in verdict.error
    assert gateway.describe() == f"smsaero (gate.smsaero.ru/v2, sign 'SMS Aero', key {KEY[:6]}…)"
    record = gateway.request_record(7, "79001234567", "hi")
    assert record == {"method": "POST", "url": "https://gate.smsaero.ru/v2/sms/send",
                      "authorization": f"Basic {EMAIL}:{KEY[:6]}…",
                      "json": {"number": 79001234567, "text": "hi", "sign": "SMS Aero"}}
    assert KEY not in json.dumps(record) + gateway.describe()
    local = aero("http://127.0.0.1:9/v2")
    assert local.local and local.describe().endswith("; nothing leaves this machine)")


def test_sms_aeros_credentials_are_refused_by_name():
    with pytest.raises(ValidationError) as refusal:
        check_credentials("", "")
    assert set(refusal.value.errors) == {"SMSAERO_EMAIL", "SMSAERO_API_KEY"}
    assert all(why.startswith("is not set") for why in refusal.value.errors.values())
    for email in ("ops example.com", "a:b@example.com"):
        with pytest.raises(ValidationError) as refusal:
            check_credentials(email, KEY)
        assert list(refusal.value.errors) == ["SMSAERO_EMAIL"]
    with pytest.raises(ValidationError) as refusal:
        SmsAeroGateway("https://gate.smsaero.ru/v2", EMAIL, " " + KEY, "SMS Aero")
    assert refusal.value.errors == {"SMSAERO_API_KEY": "has white space around it (a line end from a "
                                                       "CRLF env file?); remove it"}


def test_the_console_writes_one_literal_line_and_counts_it_sent():
    out = io.StringIO()
    gateway = ConsoleGateway(out)
    verdict = gateway.send(12, "79001234567", 'a [b]x[/b]\n"q"\x1b[31m')
    assert (verdict.outcome, verdict.http_status, verdict.error) == ("sent", None, "")
    assert out.getvalue() == 'console gateway: message 12 to 79001234567: "a [b]x[/b]\\n\\"q\\"\\u001b[31m"\n'
    assert gateway.health.current().ok_at is not None and not gateway.health.current().failing
    assert gateway.describe().startswith("console (nothing leaves this machine")


def test_the_console_writes_nothing_once_the_message_may_no_longer_leave():
    out = io.StringIO()
    assert ConsoleGateway(out).send(12, "79001234567", "late", send_by=time.monotonic() - 0.001) is None
    assert out.getvalue() == ""


def test_mailer_gateway_picks_the_backend():
    picked = {name: gateway_from_settings(Settings.from_env(env), pool_size=1) for name, env in (
        ("probe", {}),
        ("console", {"MAILER_GATEWAY": "console"}),
        ("smsaero", {"MAILER_GATEWAY": "smsaero", "SMSAERO_EMAIL": EMAIL, "SMSAERO_API_KEY": KEY}))}
    assert [(type(g), g.name) for g in picked.values()] == [
        (ProbeGateway, "probe"), (ConsoleGateway, "console"), (SmsAeroGateway, "smsaero")]
    assert picked["smsaero"].url == "https://gate.smsaero.ru/v2"
    with pytest.raises(ValidationError) as refusal:
        gateway_from_settings(Settings.from_env({"MAILER_GATEWAY": "smsaero"}))
    assert set(refusal.value.errors) == {"SMSAERO_EMAIL", "SMSAERO_API_KEY"}
