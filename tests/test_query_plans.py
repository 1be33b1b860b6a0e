"""The plans SQLite chooses for the audience counts a mailings page makes: each filter is answered
from an index alone, and the opted-out among them from the stop list to the clients by phone
(bench/console_scale.py measures them at a million clients)."""
import peewee as pw
import pytest

from domain import mailings


def plan(query):
    import models
    sql, params = query.sql()
    return " / ".join(row[-1] for row in models.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))


@pytest.mark.parametrize("operator, tag, index", [
    ("916", "vip", "client_operator_tag"),
    ("916", None, "client_operator_tag"),
    (None, "vip", "client_tag"),
])
def test_an_audience_is_counted_from_an_index_alone(database, operator, tag, index):
    query = mailings.Client.select(pw.fn.COUNT(pw.SQL("*"))).where(mailings.audience_filter(operator, tag))
    assert f"USING COVERING INDEX {index}" in plan(query)


def test_opted_out_clients_are_counted_from_the_stop_list_to_the_clients(database):
    steps = plan(mailings.opted_out_query("916", "vip")).split(" / ")
    assert steps[0].startswith("SCAN") and "opt_out" in steps[0]  # the short list drives
    assert any("SEARCH" in step and "client_phone (phone=?)" in step for step in steps)


def test_the_caps_count_the_opted_out_by_operator_from_the_stop_list(database):
    steps = plan(mailings.opted_out_by_operator_query(mailings.audience_filter(None, "vip"))).split(" / ")
    assert steps[0].startswith("SCAN") and "opt_out" in steps[0]  # the short list drives
    assert any("SEARCH" in step and "client_phone (phone=?)" in step for step in steps)
    assert not any(step.startswith("SCAN") and "client" in step.split()[1] for step in steps)


def test_the_dashboards_finish_reads_the_last_minute_and_one_index_entry(database):
    import datetime as dt

    from domain import stats

    recent = plan(stats.recent_sends_query(dt.datetime(2030, 1, 1)))
    assert "USING INDEX attempt_at (at>?)" in recent and "SCAN" not in recent  # the minute's rows, not the journal
    last = plan(stats.last_pending_query(7))
    assert "USING COVERING INDEX message_mailing_id_status_next_attempt_at (mailing_id=? AND status=?)" in last
    assert "ORDER BY" not in last  # the index's order, read backwards: no sort
