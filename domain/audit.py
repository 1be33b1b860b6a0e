"""Audit events: every change to clients and mailings, and every decision about a message, is logged
with the ids it concerns. Where the records go (file, format) is set up by `ops.logs`."""
import logging

log = logging.getLogger("mailer")


def event(message, level=logging.INFO, **fields):
    """Log one event with its fields (mailing_id, message_id, client_id, ...)."""
    if log.isEnabledFor(level):
        log.log(level, message, extra={"fields": {k: v for k, v in fields.items() if v is not None}})
