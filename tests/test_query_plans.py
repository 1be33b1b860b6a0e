"""The plans SQLite chooses for the audience counts a mailings page makes: each filter is answered
from an index alone, and the opted-out among them from the stop list to the clients by phone
(bench/console_scale.py measures them at a million clients)."""
import peewee as pw
import pytest

from domain import mailings
from domain.audience import Filter


def plan(query):
    import models
    sql, params = query.sql()
    return " / ".join(row[-1] for row in models.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))


def count_plan(flt):
    return plan(mailings.Client.select(pw.fn.COUNT(pw.SQL("*"))).where(mailings.audience_filter(flt)))


@pytest.mark.parametrize("operators", [("916",), ("900", "916")])
def test_an_audience_of_operators_is_counted_from_an_index_alone(database, operators):
    assert "USING COVERING INDEX client_operator_tag (operator=?)" in count_plan(Filter.of(operators))


@pytest.mark.parametrize("flt", [Filter.of(None, "vip"), Filter.of(None, ["vip", "new"]),
                                 Filter.of(None, None, ["vip", "new"]), Filter.of("916", "vip")])
def test_tags_any_or_all_of_drive_from_the_tag_index(database, flt):
    """Tags any of, and all of (GROUP BY ... HAVING), read the (tag, client_id) index for the tags
    named only, then each client by its key: never a pass over the clients or over every tag."""
    steps = count_plan(flt).split(" / ")
    assert "SEARCH t2 USING COVERING INDEX client_tags_tag_client_id (tag=?)" in steps
    assert not any(step.startswith("SCAN") for step in steps)


@pytest.mark.parametrize("flt, probe", [
    (Filter.of(None, None, None, ["vip"]), "USING PRIMARY KEY (client_id=? AND tag=?)"),
    (Filter.of(None, None, None, None, 86400), "USING INDEX attempt_client_id (client_id=?)"),
])
def test_none_of_and_the_frequency_cap_probe_each_client_by_its_id(database, flt, probe):
    """A tag none of and `--skip-recent` are NOT EXISTS probes by the client's id: into the tags' key,
    and into the journal's client index (no index on message by client: see models.Message)."""
    steps = count_plan(flt).split(" / ")
    assert any(step.startswith("SEARCH") and probe in step for step in steps)
    assert not any(step.startswith("SCAN") and ("attempt" in step or "client_tags" in step) for step in steps)


def test_opted_out_clients_are_counted_from_the_stop_list_to_the_clients(database):
    steps = plan(mailings.opted_out_query(Filter.of("916", "vip"))).split(" / ")
    assert steps[0].startswith("SCAN") and "opt_out" in steps[0]  # the short list drives
    assert any("SEARCH" in step and "client_phone (phone=?)" in step for step in steps)


def test_the_caps_count_the_opted_out_by_operator_from_the_stop_list(database):
    steps = plan(mailings.opted_out_by_operator_query(mailings.audience_filter(Filter.of(None, "vip")))).split(" / ")
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


def test_a_mailings_messages_are_exported_a_keyed_page_at_a_time_through_the_mailing_client_index(database):
    """`mailer mailings export` and the console's `x`: every page past the last key, no OFFSET, no
    sort of the whole mailing; the statements are the ones the export runs (peewee's log of them)."""
    import logging

    import models
    import service
    from domain import export

    for n in range(5):
        service.create_client(phone=f"7900123456{n}")
    mailing = service.create_mailing(text="t", start="now", end="+1h")
    service.delete_clients([2])  # a message without a client: the other walk
    statements = []
    handler = logging.Handler()
    handler.emit = lambda record: statements.append(record.msg)
    logger = logging.getLogger("peewee")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        for status, count in ((None, 5), (["sent", "cancelled"], 1), ("pending", 4)):  # deleted: cancelled
            pages = list(export.MessageExport(mailing.id, status).export_pages(size=2))
            assert sum(map(len, pages)) == count
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    selects = [(sql, params) for sql, params in statements if sql.startswith("SELECT") and "message" in sql]
    assert len(selects) >= 6 and not any("OFFSET" in sql for sql, _ in selects)
    for sql, params in selects:
        steps = " / ".join(row[-1] for row in models.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
        assert "message_mailing_id_client_id" in steps and "TEMP B-TREE" not in steps, (sql, steps)

