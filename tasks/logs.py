"""Structured logs: one JSON object a line (or plain text), with mailing_id, message_id and client_id on
every record they concern, in one file shared by the command line, the console and the consumers.

    MAILER_LOG_FILE    default: mailer.log beside the SQLite database (data/mailer.log)
    MAILER_LOG_FORMAT  json (default) or text
"""
import datetime as dt
import json
import logging
import os
import re
from pathlib import Path

import models

log = logging.getLogger("mailer")
IDS = ("mailing_id", "message_id", "client_id")
_actor = "cli"


def log_path():
    path = os.environ.get("MAILER_LOG_FILE")
    if path:
        return Path(path)
    db_path = models.sqlite_path(models.env_database_url())
    return Path(db_path).with_name("mailer.log") if db_path and db_path != ":memory:" else Path("data/mailer.log")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        data = {"ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "actor": _actor,
                "msg": record.getMessage(), **getattr(record, "fields", {})}
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record):
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        stamp = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        return f"{stamp}Z {record.levelname.lower():7} {_actor:8} {record.getMessage()} {fields}".rstrip()


def setup(actor):
    """Send the `mailer` loggers to the shared file, once per process."""
    global _actor
    _actor = actor
    if any(getattr(h, "_mailer", False) for h in log.handlers):
        return
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler._mailer = True
    handler.setFormatter(TextFormatter() if os.environ.get("MAILER_LOG_FORMAT") == "text" else JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def event(message, level=logging.INFO, **fields):
    """Log one event with its fields (mailing_id, message_id, client_id, ...)."""
    if log.isEnabledFor(level):
        log.log(level, message, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def matching(field, value, path=None):
    """Log records (dicts; text lines as {'line': ...}) where field == value."""
    path = path or log_path()
    if not path.exists():
        return []
    found = []
    pattern = re.compile(rf"\b{field}={value}\b")
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if str(record.get(field)) == str(value):
                    found.append(record)
            elif pattern.search(line):
                found.append({"line": line.rstrip("\n")})
    return found
