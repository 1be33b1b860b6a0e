"""The daily report rendered from rows, without a database: the text keeps what users typed
literally (on one line), the HTML escapes every string that came from a user."""
import datetime as dt

import pytest

from domain.vocabulary import ATTEMPT_OUTCOMES, MESSAGE_STATUSES
from domain.settings import Price
from ops.report import TEXT_PREVIEW, _render_html, _render_text, parse_day, totals_of

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 3, 10)
TZ = "Europe/Moscow"
EVIL = 'Sale <b>now</b> & "more" <script>alert(1)</script> [bold]x[/bold]'


def mailing(id, text, state="running", **statuses):
    counts = {s: statuses.get(s, 0) for s in MESSAGE_STATUSES}
    return {"id": id, "state": state, "text": text, "start": "2026-03-10 09:00:00 Europe/Moscow",
            "end": "2026-03-10 12:00:00 Europe/Moscow", "total": sum(counts.values()), **counts,
            "day_attempts": statuses.get("sent", 0) + statuses.get("failed", 0),
            "day_sent": statuses.get("sent", 0), "parts_sent": 2 * statuses.get("sent", 0)}


def render(rows, attempts=None, subject="[mailer] report", price=None):
    attempts = attempts or {o: 0 for o in ATTEMPT_OUTCOMES}
    totals = totals_of(rows, price)
    return (_render_text(DAY, TZ, rows, totals, attempts),
            _render_html(DAY, TZ, rows, totals, attempts, subject))


def test_the_text_keeps_a_users_markup_literally():
    text, _ = render([mailing(1, EVIL, sent=3)])
    assert f"  #1 running, 2026-03-10 09:00:00 Europe/Moscow -> 2026-03-10 12:00:00 Europe/Moscow: {EVIL}" in text
    assert "&lt;" not in text and "&amp;" not in text


def test_the_html_escapes_every_users_string():
    _, html = render([mailing(1, EVIL, sent=3)], subject=f"report <{EVIL}>")
    assert "<script>" not in html and "<b>now</b>" not in html
    assert ("Sale &lt;b&gt;now&lt;/b&gt; &amp; &quot;more&quot; &lt;script&gt;alert(1)&lt;/script&gt; "
            "[bold]x[/bold]") in html
    assert "<title>report &lt;Sale" in html


def test_a_multi_line_text_is_one_line_in_both():
    text, html = render([mailing(1, "first line\nsecond\tline\x1b[31m red")])
    assert "#1 running" in text and text.count("first line") == 1
    line = next(l for l in text.splitlines() if "first line" in l)
    assert line.endswith(": first line second line [31m red")
    assert "first line second line [31m red" in html and "\x1b" not in html


def test_a_long_text_is_cut_to_the_preview_length():
    text, html = render([mailing(1, "y" * 500)])
    preview = "y" * (TEXT_PREVIEW - 1) + "…"
    assert text.rstrip("\n").endswith(": " + preview)
    assert f">{preview}<" in html and "y" * TEXT_PREVIEW not in html


def test_the_table_has_a_row_per_mailing_and_a_totals_row():
    text, html = render([mailing(1, "a", sent=3, failed=1), mailing(2, "b", state="finished", sent=2, unknown=1)])
    lines = text.splitlines()
    header = next(l for l in lines if l.lstrip().startswith("id"))
    assert header.split()[:4] == ["id", "state", "total", "pending"]
    assert "in doubt" in header  # `unknown` is said as the operator reads it
    totals = next(l for l in lines if l.lstrip().startswith("all")).split()
    assert totals[:4] == ["all", "7", "0", "5"]  # total, pending, sent
    assert html.count("<tr>") == 1 + 2 + 1 and "<th style=\"border: 1px solid #999; padding: 2px 6px\" colspan=\"5\">all</th>" in html


def test_the_parts_sent_are_summed_and_priced_only_when_a_price_is_set():
    rows = [mailing(1, "a", sent=3), mailing(2, "b", sent=2)]
    text, html = render(rows, price=Price(__import__("decimal").Decimal("0.35"), "RUB"))
    assert "SMS parts sent" in text.splitlines()[4]
    totals = next(line for line in text.splitlines() if line.startswith("all"))
    assert totals.split()[-1] == "10"  # 2 parts x 5 sent
    assert "Cost of the SMS parts sent: 3.50 RUB" in text and "Cost of the SMS parts sent: 3.50 RUB" in html
    assert "Cost" not in render(rows)[0]


def test_the_attempts_that_day_are_summed_and_listed():
    attempts = {o: 0 for o in ATTEMPT_OUTCOMES} | {"sent": 4, "retry": 2}
    text, html = render([mailing(1, "a", sent=4)], attempts)
    assert "Attempts that day: 6 (sent 4, retry 2, failed 0, in doubt 0)\n" in text
    assert "<p>Attempts that day: 6 (sent 4, retry 2," in html
    # Decisions are not attempts: said apart, and only when there were any.
    attempts |= {"expired": 3, "suppressed": 1, "unknown": 1}
    text, _ = render([mailing(1, "a", sent=4)], attempts)
    assert ("Attempts that day: 7 (sent 4, retry 2, failed 0, in doubt 1); "
            "decided without an attempt: expired 3, suppressed 1\n") in text


def test_an_empty_day_says_so_without_a_table():
    text, html = render([])
    assert text == (f"Mailings processed on 2026-03-10 ({TZ})\n\n"
                    "Attempts that day: 0 (sent 0, retry 0, failed 0, in doubt 0)\n\n"
                    "No mailing was processed that day.\n")
    assert "<table" not in html and "<p>No mailing was processed that day.</p>" in html


def test_a_report_day_is_read_in_the_operators_zone():
    late_evening_utc = dt.datetime(2026, 3, 10, 22, 30)  # already 01:30 on the 11th in Moscow
    assert parse_day("today", TZ, now=late_evening_utc) == dt.date(2026, 3, 11)
    assert parse_day("yesterday", "UTC", now=late_evening_utc) == dt.date(2026, 3, 9)
    assert parse_day(" 2026-02-28 ", TZ) == dt.date(2026, 2, 28)
