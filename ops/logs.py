"""Structured logs: one JSON object a line (or plain text), with mailing_id, message_id and client_id on
every record they concern, in one file shared by the command line, the console and the consumers.

    MAILER_LOG_FILE    default: mailer.log beside the SQLite database (data/mailer.log)
    MAILER_LOG_FORMAT  json (default) or text
"""
import datetime as dt
import json
import logging
import re
import time
from pathlib import Path

import models
from domain import settings as _settings
from domain.audit import log

IDS = ("mailing_id", "message_id", "client_id")
_actor = "cli"
_handler = None


def log_path(settings=None):
    settings = settings or _settings.current()
    if settings.log_file:
        return Path(settings.log_file)
    db_path = models.sqlite_path(settings.db_url)
    return Path(db_path).with_name("mailer.log") if db_path and db_path != ":memory:" else Path("data/mailer.log")


class JsonFormatter(logging.Formatter):
    def format(self, record):
        line = self.line(record.created, record.levelname.lower(), record.name, record.getMessage(),
                         getattr(record, "fields", {}))
        if record.exc_info:
            line = line[:-1] + ", " + json.dumps({"exc": self.formatException(record.exc_info)})[1:]
        return line

    @staticmethod
    def line(created, level, name, message, fields):
        data = {"ts": dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat(timespec="milliseconds"),
                "level": level, "logger": name, "actor": _actor, "msg": message, **fields}
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record):
        return self.line(record.created, record.levelname.lower(), record.name, record.getMessage(),
                         getattr(record, "fields", {}))

    @staticmethod
    def line(created, level, name, message, fields):
        rest = " ".join(f"{k}={v}" for k, v in fields.items())
        stamp = dt.datetime.fromtimestamp(created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        return f"{stamp}Z {level:7} {_actor:8} {message} {rest}".rstrip()


def setup(actor):
    """Send the `mailer` loggers to the shared file, once per process."""
    global _actor
    _actor = actor
    if any(getattr(h, "_mailer", False) for h in log.handlers):
        return
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    global _handler
    handler = _handler = logging.FileHandler(path, encoding="utf-8")
    handler._mailer = True
    handler.setFormatter(TextFormatter() if _settings.current().log_format == "text" else JsonFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def events(records):
    """Many info events at once, as (message, fields) pairs: the dispatcher logs every attempt, and
    one formatted write per batch costs a fraction of a logging call per attempt."""
    handler = _handler
    if handler is None or not log.isEnabledFor(logging.INFO) or not records:
        return
    now = time.time()
    line = handler.formatter.line
    text = "".join(line(now, "info", log.name, message, {k: v for k, v in fields.items() if v is not None})
                   + "\n" for message, fields in records)
    with handler.lock:
        handler.stream.write(text)
        handler.flush()


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
