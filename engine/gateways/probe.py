"""The probe gateway (the default backend): POST {url}/send/{msgId} with a bearer token and
`{"id", "phone", "text"}`; HTTP 200 with `{"code": 0}` read whole is sent. The contract is
/work/shared/probe-api.md; `mailer gateway-sim` speaks it.

The msgId is the message's id, the same on every attempt, so a gateway that de-duplicates by msgId
can take a re-sent attempt in doubt safely (MAILER_IN_DOUBT=retry).
"""
import json

from domain.vocabulary import DOUBT, LOCAL_ONLY, RETRY, SENT
from engine.gateways.base import check_token, mask
from engine.gateways.http import HttpGateway


class ProbeGateway(HttpGateway):
    name = "probe"
    url_variable = "PROBE_URL"
    refused, credentials = "the token", "PROBE_TOKEN"

    def __init__(self, url, token, connect_timeout=3.05, read_timeout=10.0, pool_size=64):
        super().__init__(url, connect_timeout, read_timeout, pool_size)
        self._token = check_token(token or "")
        self.headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json",
                        "Accept": "application/json", "User-Agent": "mailer"}

    @property
    def masked_token(self):
        return mask(self._token)

    def describe(self):
        return f"probe ({self.where()}, token {mask(self._token)}{'; ' + LOCAL_ONLY if self.local else ''})"

    def request_record(self, msg_id, phone, text):
        return {"method": "POST", "url": f"{self.url}/send/{msg_id}",
                "authorization": f"Bearer {mask(self._token)}",
                "json": {"id": int(msg_id), "phone": int(phone), "text": text}}

    def _secrets(self):
        return (self._token,)

    def _request(self, msg_id, phone, text):
        body = json.dumps({"id": int(msg_id), "phone": int(phone), "text": text},
                          ensure_ascii=False).encode("utf-8")
        return f"{self.url}/send/{msg_id}", body, self.headers

    def _answer_200(self, text, started):
        try:
            answer = json.loads(text)
        except ValueError:
            return self._verdict(DOUBT, 200, started, f"in doubt: unreadable HTTP 200 answer: {text}")
        if isinstance(answer, dict) and answer.get("code") == 0 and not isinstance(answer.get("code"), bool):
            return self._verdict(SENT, 200, started)
        # A readable answer that is not a success: the gateway says it did not take it.
        return self._verdict(RETRY, 200, started, f"HTTP 200 with an unexpected answer: {text}")

