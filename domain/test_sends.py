"""Test sends: a mailing's exact text to the operator's own numbers, now, whatever its window, start
or end (issue 12, part 3). Each is recorded (`TestSend`) before it goes and its answer after, apart
from the mailing's messages, so the mailing's statistics leave it out. The sending itself is given
by the caller (`send(msg_id, phone, text) -> verdict`): the domain imports no gateway client."""
from domain import settings, templates
from domain.mailings import get_mailing
from domain.times import utcnow
from domain.validation import ValidationError, validate_phone
from domain.vocabulary import DOUBT, FAILED, RETRY, SENT

# A test send is never tried again: the engine's verdicts said as what became of it.
OUTCOMES = {SENT: "sent", FAILED: "failed", RETRY: "not sent", DOUBT: "in doubt"}
from models import Client, TestSend


def test_phones(phones=None):
    """The numbers given, else MAILER_TEST_PHONES; each checked, none twice."""
    given = list(phones or []) or [p for p in settings.current().test_phones.split(",") if p.strip()]
    if not given:
        raise ValidationError({"to": "no number: give --to 79001234567 or set MAILER_TEST_PHONES"})
    try:
        return list(dict.fromkeys(validate_phone(p.strip()) for p in given))
    except ValidationError as exc:
        raise ValidationError({"to": exc.errors["phone"]}) from None


def test_text(text, phone):
    """The text a test send to `phone` gets: a personal text rendered for the client of that phone
    (the operator's own card in the directory), else with its defaults (a value missing: empty)."""
    template = templates.compile_text(text)
    if not template.personal:
        return template.static
    client = Client.get_or_none(Client.phone == phone)
    return template.render(client.name, client.attrs) if client is not None else template.render()


def send_test(mailing_id, phones, send):
    """Send the mailing's text to each phone through `send`; -> the TestSend rows, answered."""
    mailing = get_mailing(mailing_id)
    rows = []
    for phone in test_phones(phones):
        text = test_text(mailing.text, phone)
        row = TestSend.create(mailing_id=mailing.id, phone=phone, text=text, at=utcnow())
        verdict = send(row.msg_id, phone, text)
        row.outcome = OUTCOMES.get(verdict.outcome, verdict.outcome)
        row.http_status, row.latency_ms, row.error = verdict.http_status, verdict.latency_ms, verdict.error[:500]
        row.save()
        rows.append(row)
    return rows


def test_sends(mailing_id, limit=20):
    """The mailing's test sends, newest first."""
    return list(TestSend.select().where(TestSend.mailing_id == mailing_id).order_by(TestSend.id.desc()).limit(limit))
