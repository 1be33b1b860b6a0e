"""The daily report: what the mailings did on one local day, built from the database and rendered as
plain text and HTML. Sending it by e-mail, and when, is `ops.report_mail`.

`build_report(day, tz)` reads the database (a few set-based queries, never one per message): a
mailing is in the report when it had any attempt that day, started that day, reached its end that day,
or was cancelled that day.
"""
import datetime as dt
import html
import zoneinfo
from dataclasses import dataclass

import peewee as pw

from domain import segments, settings, stats
from domain.times import UTC, describe_time, operator_zone, to_naive_utc, utcnow
from domain.validation import ValidationError, validate_tz
from domain.vocabulary import ATTEMPT_OUTCOMES, CANCELLED, DECISIONS, MESSAGE_STATUSES, REQUEST_OUTCOMES, status_label
from models import Attempt, Mailing

TEXT_PREVIEW = 100




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
    return to_naive_utc(start), to_naive_utc(end)


def local_today(tz, now=None):
    now = now or utcnow()
    return now.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(tz)).date()


def parse_day(value, tz=None, now=None):
    """'YYYY-MM-DD', 'today' or 'yesterday' (in the operator's zone) -> date."""
    tz = tz or operator_zone()
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
        raise ValidationError({"day": f"must be YYYY-MM-DD, today or yesterday; got {value!r}"}) from None


def build_report(day=None, tz=None, now=None):
    """The statistics of the mailings processed on local `day` (default: today) in zone `tz`
    (default: the operator's, MAILER_TZ).

    A mailing is in the report when it had any attempt that day, started that day, reached its end
    that day, or was cancelled that day. For each: its state, its messages counted by status (all
    of them, as `mailer stats` counts; total = messages materialized), and that day's attempts by
    outcome. Every query is grouped in the database.
    """
    tz = tz or operator_zone()
    validate_tz(tz)
    now = now or utcnow()
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
            | ((Mailing.state == CANCELLED) & in_day(Mailing.updated_at)))
    mailings = list(Mailing.select().where(cond).order_by(Mailing.id))

    counts = stats.status_counts([m.id for m in mailings])

    rows = []
    for m in mailings:
        by_status = {s: counts.get(m.id, {}).get(s, 0) for s in MESSAGE_STATUSES}
        day_row = day_counts.get(m.id, {})
        rows.append({
            "id": m.id, "state": m.state, "text": m.text,
            "start": describe_time(m.start_at, tz), "end": describe_time(m.end_at, tz),
            "total": sum(by_status.values()), **by_status,
            "day_attempts": sum(day_row.get(o, 0) for o in REQUEST_OUTCOMES), "day_sent": day_row.get("sent", 0),
            "parts_sent": segments.count(m.text).parts * by_status["sent"],
        })
    totals = totals_of(rows, settings.current().segment_price)
    subject = (f"[mailer] Daily report {day.isoformat()} ({tz}): {len(rows)} mailing(s), "
               f"{attempts.get('sent', 0)} sent, {attempts.get('failed', 0)} failed that day")
    return Report(day=day, tz=tz, subject=subject, text=_render_text(day, tz, rows, totals, attempts),
                  html=_render_html(day, tz, rows, totals, attempts, subject),
                  mailings=rows, attempts=attempts)


def totals_of(rows, price=None):
    """The report's last row: every count summed, and what the parts sent cost at `price`."""
    totals = {key: sum(r[key] for r in rows)
              for key in ("total", *MESSAGE_STATUSES, "day_attempts", "day_sent", "parts_sent")}
    if price is not None:
        totals["cost_sent"] = str(price.of(totals["parts_sent"]))
    return totals


COLUMNS = (("id", "id"), ("state", "state"), ("total", "total"),
           *((s, status_label(s)) for s in MESSAGE_STATUSES),
           ("day_sent", "sent that day"), ("day_attempts", "attempts that day"),
           ("parts_sent", "SMS parts sent"))


def _one_line(text, limit=TEXT_PREVIEW):
    flat = " ".join(str(text or "").split())
    flat = "".join(c if c.isprintable() else " " for c in flat)
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _attempt_summary(attempts):
    """'6 (sent 4, retry 2, failed 0, in doubt 0)', and the decisions taken without a request, when
    there were any: '; decided without an attempt: expired 3'."""
    total = sum(attempts.get(o, 0) for o in REQUEST_OUTCOMES)
    said = f"{total} ({', '.join(f'{status_label(o)} {attempts.get(o, 0)}' for o in REQUEST_OUTCOMES)})"
    decided = [f"{status_label(o)} {attempts[o]}" for o in DECISIONS if attempts.get(o)]
    return said + (f"; decided without an attempt: {', '.join(decided)}" if decided else "")


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
    if "cost_sent" in totals:
        lines += ["", f"Cost of the SMS parts sent: {totals['cost_sent']}"]
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
        if "cost_sent" in totals:
            out.append(f"<p>Cost of the SMS parts sent: {e(totals['cost_sent'])}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


