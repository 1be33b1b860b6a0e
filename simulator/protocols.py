"""What each gateway the simulator can be says and expects: its paths, its credentials, its request
body and its answers. The fault modes, the log of accepted messages and the counters are the
simulator's own and the same for every protocol (simulator/__init__.py).

``probe``    POST {base}/send/{msgId}, ``Authorization: Bearer <token>``, body
             ``{"id": int, "phone": int, "text": str}`` (id equal to msgId);
             200 ``{"code": 0, "message": "OK"}``; errors ``{"code": N, "message": "..."}``.
``smsaero``  SMS Aero's API v2: POST {base}/sms/send, HTTP Basic auth ``email:api_key``, body
             ``{"number": int or digits, "text": str, "sign": str}`` (JSON, or form-encoded);
             200 ``{"success": true, "data": {"id": N, "number": ..., "status": 0,
             "extendStatus": "queue", ...}, "message": null}``; errors
             ``{"success": false, "data": null, "message": "..."}``.

A message's *key* is what the fault decisions are drawn for and retries are counted by: the probe's
msgId; for SMS Aero, which is given no id of ours, the phone number. Duplicates are counted by the
probe's msgId, and by (phone, text) for SMS Aero: a test that judges duplicates from its log gives
each mailing its own text.

Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import time
import urllib.parse

__all__ = ["BadRequest", "PROTOCOLS", "ProbeProtocol", "SmsAeroProtocol"]

_INT_RE = re.compile(r"^-?[0-9]+$")
# Room for the largest id an SMS Aero answer may carry inside a huge body's fixed JSON.
_ID_ROOM = 20


class BadRequest(Exception):
    def __init__(self, status, message, close=False):
        super().__init__(message)
        self.status, self.message, self.close = status, message, close


def _bearer(headers):
    header = headers.get("authorization")
    if not header:
        return None
    scheme, _, cred = header.strip().partition(" ")
    cred = cred.strip()
    return cred if scheme.lower() == "bearer" and cred else None


class ProbeProtocol:
    name = "probe"
    base = "/v1"
    garbage = (
        (b"<html>oops", "text/html"),
        (b'{"code": 1, "message": "busy"}', "application/json"),
        (b"", "application/json"),
    )
    huge_suffix = b'"}'
    _send_re = re.compile(r"^(?:/v1)?/send/([^/]*)$")

    def send_path(self, path):
        """The part of a send path naming the message (None: not a send path)."""
        m = self._send_re.match(path)
        return None if m is None else m.group(1)

    @staticmethod
    def error(code, message) -> bytes:
        return json.dumps({"code": code, "message": message}).encode()

    @staticmethod
    def check_auth(headers, sim):
        """True, or why the request is refused (401)."""
        cred = _bearer(headers)
        if cred is None:
            return "missing bearer token"
        if not hmac.compare_digest(cred.encode("utf-8", "replace"), sim._token_bytes):
            return "invalid token"
        if sim._token_exp is not None and time.time() >= sim._token_exp:
            return "token expired"
        return True

    @staticmethod
    def validate(raw_id, body, headers):
        if not _INT_RE.match(raw_id):
            raise BadRequest(400, "msgId must be an integer")
        msg_id = int(raw_id)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise BadRequest(400, "invalid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest(400, "body must be a JSON object")
        for field, typ in (("id", int), ("phone", int), ("text", str)):
            if field not in data:
                raise BadRequest(400, f"missing field '{field}'")
            if type(data[field]) is not typ:  # bool is not int
                raise BadRequest(400, f"field '{field}' must be {'an integer' if typ is int else 'a string'}")
        if data["id"] != msg_id:
            raise BadRequest(400, "id does not match msgId")
        return {"key": msg_id, "id": msg_id, "phone": data["phone"], "text": data["text"]}

    @staticmethod
    def duplicate_key(msg):
        return msg["id"]

    @staticmethod
    def entry(msg, received_at, answered_at, gateway_id):
        return {"id": msg["id"], "phone": msg["phone"], "text": msg["text"],
                "received_at": received_at, "answered_at": answered_at}

    @staticmethod
    def ok(entry) -> bytes:
        return b'{"code": 0, "message": "OK"}'

    @staticmethod
    def huge_prefix(entry) -> bytes:
        return b'{"code": 0, "message": "'

    def huge_min(self):
        return len(self.huge_prefix(None)) + len(self.huge_suffix)

    @staticmethod
    def listening(sim, shown):
        return f"gateway-sim listening on {sim.url} token={shown}"


class SmsAeroProtocol:
    name = "smsaero"
    base = "/v2"
    # Each is in doubt to a client: no JSON, a success that names no message, nothing.
    garbage = (
        (b"<html>oops", "text/html"),
        (b'{"success": true, "data": null, "message": null}', "application/json"),
        (b"", "application/json"),
    )
    huge_suffix = b'"}'
    _send_re = re.compile(r"^(?:/v2)?/sms/send$")

    def send_path(self, path):
        return "" if self._send_re.match(path) else None

    @staticmethod
    def error(code, message) -> bytes:
        return json.dumps({"success": False, "data": None, "message": message}).encode()

    @staticmethod
    def check_auth(headers, sim):
        header = headers.get("authorization") or ""
        scheme, _, cred = header.strip().partition(" ")
        if scheme.lower() != "basic" or not cred.strip():
            return "missing credentials (HTTP Basic auth: email and API key)"
        try:
            pair = base64.b64decode(cred.strip(), validate=True)
        except (binascii.Error, ValueError):
            return "unreadable credentials"
        email, sep, key = pair.partition(b":")
        email_ok = hmac.compare_digest(email, sim.email.encode("utf-8"))
        key_ok = hmac.compare_digest(key, sim._token_bytes)
        return True if sep and email_ok and key_ok else "Your request was made with invalid credentials."

    @staticmethod
    def validate(raw, body, headers):
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/x-www-form-urlencoded":
            data = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        else:
            try:
                data = json.loads(body)
            except (ValueError, RecursionError):
                raise BadRequest(400, "Validation error: the body is not JSON") from None
            if not isinstance(data, dict):
                raise BadRequest(400, "Validation error: the body must be a JSON object")
        number = data.get("number")
        if isinstance(number, str) and number.isascii() and number.isdigit():
            number = int(number)
        if type(number) is not int or not 10 ** 9 <= number < 10 ** 15:
            raise BadRequest(400, "Validation error: number must be a phone number in digits")
        for field in ("text", "sign"):
            if not isinstance(data.get(field), str) or not data[field].strip():
                raise BadRequest(400, f"Validation error: {field} cannot be blank")
        return {"key": number, "phone": number, "text": data["text"], "sign": data["sign"]}

    @staticmethod
    def duplicate_key(msg):
        return (msg["phone"], msg["text"])

    @staticmethod
    def entry(msg, received_at, answered_at, gateway_id):
        return {"id": gateway_id, "phone": msg["phone"], "text": msg["text"], "sign": msg["sign"],
                "received_at": received_at, "answered_at": answered_at}

    @staticmethod
    def _data(entry):
        return {"id": entry["id"], "from": entry["sign"], "number": str(entry["phone"]), "text": entry["text"],
                "status": 0, "extendStatus": "queue", "channel": "FREE SIGN", "cost": 0,
                "dateCreate": int(entry["received_at"]), "dateSend": int(entry["received_at"])}

    def ok(self, entry) -> bytes:
        return json.dumps({"success": True, "data": self._data(entry), "message": None},
                          ensure_ascii=False).encode("utf-8")

    @staticmethod
    def huge_prefix(entry) -> bytes:
        ref = 10 ** (_ID_ROOM - 1) if entry is None else entry["id"]
        return b'{"success": true, "data": {"id": %d}, "message": "' % ref

    def huge_min(self):
        return len(self.huge_prefix(None)) + len(self.huge_suffix)

    @staticmethod
    def listening(sim, shown):
        return f"gateway-sim (smsaero) listening on {sim.url} email={sim.email} api-key={shown}"


PROTOCOLS = {p.name: p for p in (ProbeProtocol(), SmsAeroProtocol())}
