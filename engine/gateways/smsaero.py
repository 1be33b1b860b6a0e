"""SMS Aero's HTTP API, version 2 (https://smsaero.ru/description/api/): POST
{SMSAERO_URL}/sms/send with HTTP Basic auth (the account's e-mail and API key) and
`{"number", "text", "sign"}`; a success is HTTP 200 with
`{"success": true, "data": {"id": …, "status": …, "extendStatus": …, "cost": …}, "message": null}`,
a refusal `{"success": false, "message": "…"}`, mostly with a 4xx.

Its answers are sorted as the probe's (engine.gateways.http does the statuses they share):
- 200 with `success: true` and the message's `data.id`: sent (the id is logged with the attempt);
- 200 with `success: false`: not taken, retried;
- 200 with `success: true` and no id, or that cannot be read: in doubt;
- 401, 403 (credentials, a blocked account) and 402 (no money): pause sending for everyone;
- another 4xx (a bad number, an empty text, an unknown sign): failed for good.

SMS Aero has no key of ours on /sms/send to de-duplicate by: an attempt sent again after one in
doubt may be delivered twice. MAILER_IN_DOUBT=retry is refused with this backend (domain.settings).
"""
import base64
import json

from domain.validation import ValidationError
from domain.vocabulary import DOUBT, FAILED, LOCAL_ONLY, RETRY, SENT
from engine.gateways.base import check_token, mask
from engine.gateways.http import HttpGateway

# Answers about the account, not the message: every message would get the same.
ACCOUNT_REFUSALS = {401: "credentials refused", 402: "no money on the account", 403: "access refused"}


def check_credentials(email, api_key):
    """Both are needed; each refused with the variable's name, both at once."""
    errors = {}
    if not email:
        errors["SMSAERO_EMAIL"] = "is not set: MAILER_GATEWAY=smsaero sends as this SMS Aero account"
    elif any(c.isspace() or c == ":" or not c.isprintable() for c in email):
        errors["SMSAERO_EMAIL"] = "must be the account's e-mail, without spaces or a colon"
    if not api_key:
        errors["SMSAERO_API_KEY"] = ("is not set: MAILER_GATEWAY=smsaero needs the account's API key "
                                     "(SMS Aero's cabinet, settings, API key)")
    else:
        try:
            check_token(api_key, "SMSAERO_API_KEY")
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)


class SmsAeroGateway(HttpGateway):
    name = "smsaero"
    url_variable = "SMSAERO_URL"
    refused, credentials = "the credentials", "SMSAERO_EMAIL and SMSAERO_API_KEY"

    def __init__(self, url, email, api_key, sign, connect_timeout=3.05, read_timeout=10.0, pool_size=64):
        check_credentials(email, api_key)
        super().__init__(url, connect_timeout, read_timeout, pool_size)
        self.email, self._key, self.sign = email, api_key, sign
        self._basic = base64.b64encode(f"{email}:{api_key}".encode("utf-8")).decode("ascii")
        self.headers = {"Authorization": f"Basic {self._basic}", "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": "mailer"}

    def describe(self):
        return (f"smsaero ({self.where()}, sign {self.sign!r}, key {mask(self._key)}"
                f"{'; ' + LOCAL_ONLY if self.local else ''})")

    def request_record(self, msg_id, phone, text):
        return {"method": "POST", "url": f"{self.url}/sms/send",
                "authorization": f"Basic {self.email}:{mask(self._key)}",
                "json": {"number": int(phone), "text": text, "sign": self.sign}}

    def _secrets(self):
        return (self._key, self._basic)

    def _request(self, msg_id, phone, text):
        body = json.dumps({"number": int(phone), "text": text, "sign": self.sign},
                          ensure_ascii=False).encode("utf-8")
        return f"{self.url}/sms/send", body, self.headers

    def _answer_200(self, text, started):
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("success"), bool):
            return self._verdict(DOUBT, 200, started, f"in doubt: unreadable HTTP 200 answer: {text}")
        if not answer["success"]:
            # A readable refusal: SMS Aero says it did not take the message.
            return self._verdict(RETRY, 200, started, f"HTTP 200 with success false: {answer.get('message')}")
        data = answer.get("data")
        ref = data.get("id") if isinstance(data, dict) else None
        if isinstance(ref, bool) or not (isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit())):
            # It says success but names no message: it may have taken this one, or not.
            return self._verdict(DOUBT, 200, started, f"in doubt: HTTP 200 success without a message id: {text}")
        return self._verdict(SENT, 200, started, ref=str(ref))

    def pause_reason(self, verdict):
        if verdict.http_status == 402:  # the account, not its credentials: nothing to set or restart
            return (f"the gateway refused to send ({verdict.error}); sending is paused for everyone: "
                    f"top up the SMS Aero account; sending tries again after MAILER_AUTH_PAUSE")
        return super().pause_reason(verdict)

    def _refusal(self, status, error, started):
        if status in ACCOUNT_REFUSALS:
            return self._verdict(RETRY, status, started, f"{ACCOUNT_REFUSALS[status]}: {error}", halt=True)
        return self._verdict(FAILED, status, started, error)
