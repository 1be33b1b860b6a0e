"""The daily report: what the mailings did on one local day, as plain text and HTML, sent by e-mail.

`build_report(day, tz)` reads the database (a few set-based queries, never one per message);
`send_report(report)` sends it as multipart/alternative through `smtplib`; the periodic task
`send_daily_report` (registered on the huey instance when this module is imported in the consumer)
sends it once a day at MAILER_REPORT_TIME in the operator's zone (MAILER_TZ).

Configuration (environment):

| Variable | Default | Meaning |
|---|---|---|
| MAILER_SMTP_HOST | (required) | the SMTP server |
| MAILER_SMTP_PORT | 587 for starttls, 465 for ssl, 25 for none | its port |
| MAILER_SMTP_SECURITY | starttls | starttls (refused if the server does not offer it), ssl (implicit TLS), or none |
| MAILER_SMTP_USER, MAILER_SMTP_PASSWORD | unset | login; both or neither; never over `none`; the password is never printed or logged |
| MAILER_SMTP_CAFILE | the system's CAs | a PEM file of CAs to trust instead (a private CA; the tests' self-signed cert) |
| MAILER_SMTP_TIMEOUT | 30 | seconds per SMTP operation |
| MAILER_REPORT_FROM | (required) | the sender address |
| MAILER_REPORT_TO | unset = no daily report | recipients, comma-separated |
| MAILER_REPORT_TIME | 08:00 | local time (MAILER_TZ) of the daily report |
"""
import datetime as dt
import html
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

import peewee as pw
from huey import crontab

import models
from models import MESSAGE_STATUSES, Attempt, Mailing, Message
from tasks import huey as _huey

log = logging.getLogger("mailer.report")

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_REPORT_TIME = dt.time(8, 0)
ATTEMPT_OUTCOMES = ("sent", "retry", "failed", "expired", "cancelled", "unknown")
TEXT_PREVIEW = 100
IN_CHUNK = 500


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
    def from_env(cls, env=None):
        """Read MAILER_SMTP_* and MAILER_REPORT_*; raise ReportConfigError naming what is wrong."""
        env = os.environ if env is None else env
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
# Building


@dataclass
class Report:
    day: dt.date
    tz: str
    subject: str
    text: str
    html: str
    mailings: list  # one dict per mailing: id, state, text, start, end, total, <status>: n, day_<outcome>: n
    attempts: dict  # that day's attempts by outcome

    def as_dict(self):
        return {"day": self.day.isoformat(), "tz": self.tz, "subject": self.subject,
                "attempts": self.attempts, "mailings": self.mailings}


def local_day_bounds(day, tz):
    """[start, end) of a local calendar day as naive UTC (DST-aware: a day may last 23 or 25 h)."""
    zone = zoneinfo.ZoneInfo(tz)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return models.to_naive_utc(start), models.to_naive_utc(end)


def local_today(tz, now=None):
    now = now or models.utcnow()
    return now.replace(tzinfo=models.UTC).astimezone(zoneinfo.ZoneInfo(tz)).date()


def parse_day(value, tz=None, now=None):
    """'YYYY-MM-DD', 'today' or 'yesterday' (in the operator's zone) -> date."""
    tz = tz or models.operator_zone()
    if isinstance(value, dt.datetime):
        return value.date()
    if value is None or isinstance(value, dt.date):
        return value or local_today(tz, now)
    text = str(value).strip().lower()
    if text in ("", "today"):
        return local_today(tz, now)
    if text == "yesterday":
        return local_today(tz, now) - dt.timedelta(days=1)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise models.ValidationError({"day": f"must be YYYY-MM-DD, today or yesterday; got {value!r}"}) from None


def _chunks(seq, size=IN_CHUNK):
    seq = list(seq)
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def build_report(day=None, tz=None, now=None):
    """The statistics of the mailings processed on local `day` (default: today) in zone `tz`
    (default: the operator's, MAILER_TZ).

    A mailing is in the report when it had any attempt that day, started that day, reached its end
    that day, or was cancelled that day. For each: its state, its messages counted by status (all
    of them, as `mailer stats` counts; total = messages materialized), and that day's attempts by
    outcome. Every query is grouped in the database.
    """
    tz = tz or models.operator_zone()
    models.validate_tz(tz)
    now = now or models.utcnow()
    day = parse_day(day, tz, now)
    lo, hi = local_day_bounds(day, tz)
    in_day = lambda col: (col >= lo) & (col < hi)  # noqa: E731

    # That day's attempts, by mailing and outcome: one GROUP BY over the indexed `at`.
    day_counts, attempts = {}, {o: 0 for o in ATTEMPT_OUTCOMES}
    query = (Attempt.select(Attempt.mailing_id, Attempt.outcome, pw.fn.COUNT(pw.SQL("*")))
             .where(in_day(Attempt.at)).group_by(Attempt.mailing_id, Attempt.outcome).tuples())
    for mailing_id, outcome, n in query:
        day_counts.setdefault(mailing_id, {})[outcome] = n
        attempts[outcome] = attempts.get(outcome, 0) + n

    ended_before = min(hi, now)
    cond = (Mailing.id.in_(Attempt.select(Attempt.mailing_id).where(in_day(Attempt.at)))
            | in_day(Mailing.started_at)
            | ((Mailing.end_at >= lo) & (Mailing.end_at < ended_before))
            | ((Mailing.state == models.CANCELLED) & in_day(Mailing.updated_at)))
    mailings = list(Mailing.select().where(cond).order_by(Mailing.id))

    counts = {}
    for part in _chunks([m.id for m in mailings]):
        grouped = (Message.select(Message.mailing, Message.status, pw.fn.COUNT(pw.SQL("*")))
                   .where(Message.mailing.in_(part)).group_by(Message.mailing, Message.status).tuples())
        for mailing_id, status, n in grouped:
            counts.setdefault(mailing_id, {})[status] = n

    rows = []
    for m in mailings:
        by_status = {s: counts.get(m.id, {}).get(s, 0) for s in MESSAGE_STATUSES}
        day_row = day_counts.get(m.id, {})
        rows.append({
            "id": m.id, "state": m.state, "text": m.text,
            "start": models.describe_time(m.start_at, tz), "end": models.describe_time(m.end_at, tz),
            "total": sum(by_status.values()), **by_status,
            "day_attempts": sum(day_row.values()), "day_sent": day_row.get("sent", 0),
        })
    totals = {key: sum(r[key] for r in rows) for key in ("total", *MESSAGE_STATUSES, "day_attempts", "day_sent")}
    subject = (f"[mailer] Daily report {day.isoformat()} ({tz}): {len(rows)} mailing(s), "
               f"{attempts.get('sent', 0)} sent, {attempts.get('failed', 0)} failed that day")
    return Report(day=day, tz=tz, subject=subject, text=_render_text(day, tz, rows, totals, attempts),
                  html=_render_html(day, tz, rows, totals, attempts, subject),
                  mailings=rows, attempts=attempts)


COLUMNS = (("id", "id"), ("state", "state"), ("total", "total"),
           *((s, models.status_label(s)) for s in MESSAGE_STATUSES),
           ("day_sent", "sent that day"), ("day_attempts", "attempts that day"))


def _one_line(text, limit=TEXT_PREVIEW):
    flat = " ".join(str(text or "").split())
    flat = "".join(c if c.isprintable() else " " for c in flat)
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _attempt_summary(attempts):
    total = sum(attempts.values())
    parts = ", ".join(f"{k} {v}" for k, v in attempts.items())
    return f"{total} ({parts})"


def _render_text(day, tz, rows, totals, attempts):
    lines = [f"Mailings processed on {day.isoformat()} ({tz})", "",
             f"Attempts that day: {_attempt_summary(attempts)}", ""]
    if not rows:
        lines.append("No mailing was processed that day.")
        return "\n".join(lines) + "\n"
    header = [title for _, title in COLUMNS]
    body = [[str(r[key]) for key, _ in COLUMNS] for r in rows]
    body.append(["all", ""] + [str(totals[key]) for key, _ in COLUMNS[2:]])
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i != 1 else c.ljust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    lines.append(fmt(header))
    lines.append(fmt(["-" * w for w in widths]))
    lines.extend(fmt(b) for b in body[:-1])
    lines.append(fmt(["-" * w for w in widths]))
    lines.append(fmt(body[-1]))
    lines += ["", "Mailings:"]
    for r in rows:
        lines.append(f"  #{r['id']} {r['state']}, {r['start']} -> {r['end']}: {_one_line(r['text'])}")
    return "\n".join(lines) + "\n"


def _render_html(day, tz, rows, totals, attempts, subject):
    e = lambda value: html.escape(str(value), quote=True)  # noqa: E731
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{e(subject)}</title>",
           "</head><body style=\"font-family: sans-serif\">",
           f"<h2>Mailings processed on {e(day.isoformat())} ({e(tz)})</h2>",
           f"<p>Attempts that day: {e(_attempt_summary(attempts))}</p>"]
    if not rows:
        out.append("<p>No mailing was processed that day.</p>")
    else:
        cell = "style=\"border: 1px solid #999; padding: 2px 6px\""
        out.append("<table style=\"border-collapse: collapse\">")
        out.append("<thead><tr>" + "".join(f"<th {cell}>{e(t)}</th>"
                                            for t in ("id", "text", "state", "start", "end",
                                                      *(t for _, t in COLUMNS[2:]))) + "</tr></thead>")
        out.append("<tbody>")
        for r in rows:
            out.append("<tr>" + "".join(
                f"<td {cell}>{e(v)}</td>" for v in (r["id"], _one_line(r["text"]), r["state"],
                                                    r["start"], r["end"], *(r[k] for k, _ in COLUMNS[2:])))
                       + "</tr>")
        out.append("</tbody><tfoot><tr>" + f"<th {cell} colspan=\"5\">all</th>"
                   + "".join(f"<th {cell}>{e(totals[k])}</th>" for k, _ in COLUMNS[2:]) + "</tr></tfoot>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


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
    config = config or ReportConfig.from_env()
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


def run_due_report(huey, now=None, env=None):
    """One tick of the daily report: send it if it is due and no consumer sent it yet. Returns the
    day sent, or None. Quiet when MAILER_REPORT_TO is unset. `huey` supplies the key/value storage
    shared by all consumers (`put`, `get`, `put_if_empty`, `delete`)."""
    env = os.environ if env is None else env
    if not (env.get("MAILER_REPORT_TO") or "").strip():
        return None
    try:
        config = ReportConfig.from_env(env)
        tz = models.validate_tz((env.get("MAILER_TZ") or "").strip() or models.operator_zone(), "MAILER_TZ")
    except (ReportConfigError, models.ValidationError) as exc:
        if _last_problem["text"] != str(exc):  # once, not every minute
            log.error("daily report: %s", exc)
            _last_problem["text"] = str(exc)
        return None
    now = now or models.utcnow()
    now_local = now.replace(tzinfo=models.UTC).astimezone(zoneinfo.ZoneInfo(tz))
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


# The periodic task lives on the service's huey instance: it registers when this module is imported
# (the consumer imports it). Crontab is checked every minute; the rule is report_due's.

@_huey.periodic_task(crontab(minute="*"), name="send_daily_report")
def send_daily_report():
    """Every minute: send the daily report if it is due (see report_due); nothing without
    MAILER_REPORT_TO."""
    run_due_report(_huey)


# ---------------------------------------------------------------------------------------------------
# Command line


def cli_report(send=False, day=None, as_json=False):
    """`mailer report [--day D] [--send] [--json]`: print the report's text (or JSON), or send it and
    print 'sent to ...'. Returns the exit status: 0, 2 for incomplete configuration, 1 when the
    server refused or could not be reached. A bad --day raises models.ValidationError (exit 2)."""
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
