"""The console backend: a dry run an operator can read. Each message is written as one line to this
process's standard output (a consumer's, or `mailer mailings test`'s) and to the log file, and counted
as sent; nothing leaves this machine.

It goes through the same dispatcher as the others, so it shows what a real run would send and when:
the same claims, windows, caps, end guard and `send_by` (a message that could not start in time is
not written), and the same journal and statistics.
"""
import json
import sys
import threading
import time

from domain.vocabulary import LOCAL_ONLY, SENT
from engine.gateways.base import Gateway, Verdict
from ops.logs import events


class ConsoleGateway(Gateway):
    name = "console"
    local = True

    def __init__(self, out=None):
        super().__init__()
        self._out = out
        self._lock = threading.Lock()  # one whole line at a time from the sending threads

    def describe(self):
        return f"console ({LOCAL_ONLY}: each message is written to the consumer's output and log)"

    def request_record(self, msg_id, phone, text):
        return {"method": "console", "json": {"id": int(msg_id), "phone": int(phone), "text": text}}

    def _answered(self, verdict):
        return True  # nothing to fail: the dashboard shows it answering

    def _send(self, msg_id, phone, text, send_by):
        started = time.monotonic()
        if send_by is not None and started > send_by:
            return None
        # The text as a JSON string: literal, on one line, control characters escaped (a text cannot
        # move the cursor or recolour the operator's terminal).
        line = f"console gateway: message {msg_id} to {phone}: {json.dumps(text, ensure_ascii=False)}\n"
        out = self._out or sys.stdout
        with self._lock:
            try:
                out.write(line)
                out.flush()
            except (OSError, ValueError):
                pass  # an output closed under us: the log still has it
        events([("console message", {"message_id": int(msg_id), "phone": phone, "text": text})])
        return Verdict(SENT, None, round((time.monotonic() - started) * 1000, 2), "", None, time.time())
