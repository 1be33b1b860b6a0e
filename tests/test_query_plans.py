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
