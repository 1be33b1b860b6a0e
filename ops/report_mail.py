"""Sending the daily report by e-mail: its configuration (MAILER_SMTP_*, MAILER_REPORT_*), the
message, the SMTP conversation, and the once-a-day rule that the consumers' periodic task applies.
"""
import datetime as dt
import json
import logging
import os
import smtplib
import ssl
import sys
import zoneinfo
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

from domain import settings as _settings
from domain.times import UTC, operator_zone, utcnow
from domain.validation import ValidationError, validate_tz
from ops.report import build_report

log = logging.getLogger("mailer.report")

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_REPORT_TIME = dt.time(8, 0)


class ReportError(Exception):
    """Something the operator must fix; the message says what, without any secret."""


class ReportConfigError(ReportError):
    pass


class ReportSendError(ReportError):
    pass


# ---------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class ReportConfig:
    host: str
    port: int
    security: str
    sender: str
    recipients: tuple
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never shown
    cafile: str | None = None
    timeout: float = 30.0
    report_time: dt.time = DEFAULT_REPORT_TIME

    @classmethod
    def from_settings(cls, settings=None):
        settings = settings or _settings.current()
        return cls.from_env({name: str(getattr(settings, f.name))
                             for name, f in _settings.VARIABLES.items()})

    @classmethod
    def from_env(cls, env):
        """Check MAILER_SMTP_* and MAILER_REPORT_* (a mapping of variables: the environment, or the
        settings'); raise ReportConfigError naming what is wrong."""
        get = lambda name: (env.get(name) or "").strip()  # noqa: E731
        problems = []
        host = get("MAILER_SMTP_HOST")
        if not host:
            problems.append("MAILER_SMTP_HOST is not set (the SMTP server's name)")
        security = (get("MAILER_SMTP_SECURITY") or "starttls").lower()
        if security not in SECURITY_MODES:
            problems.append(f"MAILER_SMTP_SECURITY must be one of {', '.join(SECURITY_MODES)}; "
                            f"got {security!r}")
            security = "starttls"
        port_text = get("MAILER_SMTP_PORT")
        port = DEFAULT_PORTS[security]
        if port_text:
            if port_text.isdigit() and 0 < int(port_text) < 65536:
                port = int(port_text)
            else:
                problems.append(f"MAILER_SMTP_PORT must be a port number; got {port_text!r}")
        sender = get("MAILER_REPORT_FROM")
        if not sender:
            problems.append("MAILER_REPORT_FROM is not set (the sender address)")
        elif not _looks_like_address(sender):
            problems.append(f"MAILER_REPORT_FROM is not an e-mail address: {sender!r}")
        recipients = parse_recipients(get("MAILER_REPORT_TO"))
        bad = [r for r in recipients if not _looks_like_address(r)]
        if not get("MAILER_REPORT_TO"):
            problems.append("MAILER_REPORT_TO is not set (comma-separated recipients)")
        elif not recipients:
            problems.append(f"MAILER_REPORT_TO has no address in {get('MAILER_REPORT_TO')!r}")
        elif bad:
            problems.append(f"MAILER_REPORT_TO has invalid addresses: {', '.join(map(repr, bad))}")
        user = get("MAILER_SMTP_USER") or None
        password = env.get("MAILER_SMTP_PASSWORD") or None
        if bool(user) != bool(password):
            problems.append("MAILER_SMTP_USER and MAILER_SMTP_PASSWORD go together: set both or neither")
        if user and security == "none":
            problems.append("refusing to send the SMTP password in clear text: use "
                            "MAILER_SMTP_SECURITY=starttls or ssl with a login")
        cafile = get("MAILER_SMTP_CAFILE") or None
        if cafile and not os.path.isfile(cafile):
            problems.append(f"MAILER_SMTP_CAFILE is not a file: {cafile}")
        timeout = 30.0
        if get("MAILER_SMTP_TIMEOUT"):
            try:
                timeout = float(get("MAILER_SMTP_TIMEOUT"))
                if timeout <= 0:
                    raise ValueError
            except ValueError:
                problems.append(f"MAILER_SMTP_TIMEOUT must be a positive number of seconds; "
                                f"got {get('MAILER_SMTP_TIMEOUT')!r}")
                timeout = 30.0
        try:
            report_time = parse_report_time(get("MAILER_REPORT_TIME"))
        except ReportConfigError as exc:
            problems.append(str(exc))
            report_time = DEFAULT_REPORT_TIME
        if problems:
            raise ReportConfigError("report e-mail is not configured: " + "; ".join(problems))
        return cls(host=host, port=port, security=security, sender=sender,
                   recipients=tuple(recipients), user=user, password=password, cafile=cafile,
                   timeout=timeout, report_time=report_time)


def parse_recipients(value):
    return [addr for _, addr in getaddresses([value or ""]) if addr]


def _looks_like_address(value):
    _, addr = getaddresses([value])[0] if value else ("", "")
    return bool(addr) and "@" in addr and not any(c.isspace() or ord(c) < 32 for c in addr)


def parse_report_time(value):
    """'HH:MM' -> datetime.time; empty -> 08:00."""
    value = (value or "").strip()
    if not value:
        return DEFAULT_REPORT_TIME
    try:
        hours, minutes = value.split(":")
        if len(minutes) != 2:
            raise ValueError
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ReportConfigError(f"MAILER_REPORT_TIME must be a local time like 08:00; got {value!r}") from None


# ---------------------------------------------------------------------------------------------------
# Sending


def build_message(report, config):
    msg = EmailMessage()
    msg["Subject"] = report.subject
    msg["From"] = config.sender
    msg["To"] = ", ".join(config.recipients)
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid("mailer-report", domain=config.sender.rpartition("@")[2] or "localhost")
    msg.set_content(report.text)
    msg.add_alternative(report.html, subtype="html")
    return msg


def tls_context(config):
    """Verifying TLS: the system's CAs, or MAILER_SMTP_CAFILE's alone when set; host names checked."""
    return ssl.create_default_context(cafile=config.cafile)


def send_report(report, config=None):
    """Send `report` as multipart/alternative (text + HTML). Raises ReportConfigError when the
    configuration is incomplete and ReportSendError when the server refuses or cannot be reached.
    Returns the recipients."""
    config = config or ReportConfig.from_settings()
    msg = build_message(report, config)
    where = f"{config.host}:{config.port} ({config.security})"
    try:
        if config.security == "ssl":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                    context=tls_context(config))
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            smtp.ehlo()
            if config.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise ReportSendError(f"{where} does not offer STARTTLS; refusing to send in clear "
                                          f"text (set MAILER_SMTP_SECURITY=ssl or none if intended)")
                smtp.starttls(context=tls_context(config))
                smtp.ehlo()
            if config.user:
                smtp.login(config.user, config.password)
            refused = smtp.send_message(msg, from_addr=config.sender, to_addrs=list(config.recipients))
    except ReportError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise ReportSendError(f"the SMTP server {where} refused the login of {config.user!r}: "
                              f"{exc.smtp_code} {_decode(exc.smtp_error)}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise ReportSendError(f"the SMTP server {where} refused every recipient: "
                              f"{', '.join(exc.recipients)}") from None
    except smtplib.SMTPResponseException as exc:
        raise ReportSendError(f"the SMTP server {where} answered {exc.smtp_code} "
                              f"{_decode(exc.smtp_error)}") from None
    except ssl.SSLError as exc:
        raise ReportSendError(f"TLS with {where} failed: {exc} (a private CA? set MAILER_SMTP_CAFILE)") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ReportSendError(f"could not send the report through {where}: {exc}") from None
    if refused:
        log.warning("report: some recipients were refused: %s", ", ".join(refused))
    return [r for r in config.recipients if r not in (refused or {})]


def _decode(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------------------------------
# Once a day


def report_due(now_local, report_time, last_sent_day):
    """The day whose report is due at local time `now_local`, or None.

    The rule: nothing is due before `report_time` on the local calendar. From `report_time` on, the
    report covers the previous local day (yesterday) when `report_time` is before 12:00, and the
    current local day (today) when it is 12:00 or later; it is due unless `last_sent_day` is
    already that day or later. So a consumer that was down at the report time sends it when it comes
    back the same local day; a report missed for a whole day is not sent afterwards. A report time
    skipped by a DST jump fires when the clocks jump; a repeated hour sends once.
    """
    if now_local.time().replace(tzinfo=None) < report_time:
        return None
    day = now_local.date()
    if report_time < dt.time(12, 0):
        day -= dt.timedelta(days=1)
    if last_sent_day is not None and last_sent_day >= day:
        return None
    return day


LAST_SENT_KEY = "mailer:report:last-sent-day"
CLAIM_KEY = "mailer:report:claim:{day}"
FAILURES_KEY = "mailer:report:failures:{day}"
MAX_FAILURES = 3  # sends tried per day (one a minute) before giving up until the next day
_last_problem = {"text": None}


def run_due_report(huey, now=None, settings=None):
    """One tick of the daily report: send it if it is due and no consumer sent it yet. Returns the
    day sent, or None. Quiet when MAILER_REPORT_TO is unset. `huey` supplies the key/value storage
    shared by all consumers (`put`, `get`, `put_if_empty`, `delete`)."""
    settings = settings or _settings.current()
    if not settings.report_to:
        return None
    try:
        config = ReportConfig.from_settings(settings)
        tz = validate_tz(settings.tz or operator_zone(settings), "MAILER_TZ")
    except (ReportConfigError, ValidationError) as exc:
        if _last_problem["text"] != str(exc):  # once, not every minute
            log.error("daily report: %s", exc)
            _last_problem["text"] = str(exc)
        return None
    now = now or utcnow()
    now_local = now.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(tz))
    last = huey.get(LAST_SENT_KEY, peek=True)
    last_day = dt.date.fromisoformat(last) if last else None
    day = report_due(now_local, config.report_time, last_day)
    if day is None:
        return None
    failures = huey.get(FAILURES_KEY.format(day=day), peek=True) or 0
    if failures >= MAX_FAILURES:
        return None
    # Several consumers share the storage: one of them claims the day.
    if not huey.put_if_empty(CLAIM_KEY.format(day=day), now.isoformat()):
        return None
    try:
        report = build_report(day, tz, now=now)
        recipients = send_report(report, config)
    except Exception as exc:
        failures += 1
        huey.put(FAILURES_KEY.format(day=day), failures)
        huey.delete(CLAIM_KEY.format(day=day))  # the next minute may try again
        log.error("daily report for %s not sent (try %d of %d): %s", day, failures, MAX_FAILURES,
                  exc if isinstance(exc, ReportError) else repr(exc))
        return None
    huey.put(LAST_SENT_KEY, day.isoformat())
    _last_problem["text"] = None
    log.info("daily report for %s sent to %s", day, ", ".join(recipients))
    return day
# ---------------------------------------------------------------------------------------------------
# Command line


def cli_report(send=False, day=None, as_json=False):
    """`mailer report [--day D] [--send] [--json]`: print the report's text (or JSON), or send it and
    print 'sent to ...'. Returns the exit status: 0, 2 for incomplete configuration, 1 when the
    server refused or could not be reached. A bad --day raises ValidationError (exit 2)."""
    report = build_report(day)
    if not send:
        if as_json:
            print(json.dumps(report.as_dict(), ensure_ascii=False))
        else:
            print(report.text, end="")
        return 0
    try:
        recipients = send_report(report)
    except ReportConfigError as exc:
        print(f"error: report: {exc}", file=sys.stderr)
        return 2
    except ReportSendError as exc:
        print(f"error: report: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"sent_to": recipients, "day": report.day.isoformat(), "subject": report.subject}))
    else:
        print(f"sent to {', '.join(recipients)}")
    return 0

