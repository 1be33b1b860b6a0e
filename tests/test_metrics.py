"""Prometheus metrics: the server in this process on 127.0.0.1, a seeded database, attempts observed
as the dispatcher reports them, and a scrape over HTTP parsed with prometheus_client's own parser."""
import datetime as dt
import json
import socket

import peewee as pw
import pytest

prometheus_client = pytest.importorskip("prometheus_client")
import requests  # noqa: E402
from huey import MemoryHuey  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import models  # noqa: E402
from domain import times, vocabulary
from models import Client, Mailing, Message  # noqa: E402
from domain.settings import Settings  # noqa: E402
from ops import metrics  # noqa: E402
from support import free_port, phones, wait_for  # noqa: E402


@pytest.fixture
def seeded(database):
    now = times.utcnow()
    clients = [Client.create(phone=f"790000000{i:02d}", operator="900", tag="", tz="UTC") for i in range(10)]
    running = Mailing.create(text="run", state=vocabulary.RUNNING, start_at=now - dt.timedelta(hours=1),
                             end_at=now + dt.timedelta(hours=1), started_at=now - dt.timedelta(hours=1))
    finished = Mailing.create(text="done", state=vocabulary.FINISHED, start_at=now - dt.timedelta(days=2),
                              end_at=now - dt.timedelta(days=1), started_at=now - dt.timedelta(days=2))
    Mailing.create(text="later", state=vocabulary.SCHEDULED, start_at=now + dt.timedelta(days=1),
                   end_at=now + dt.timedelta(days=2))
    rows = [  # (mailing, status, next attempt, lease owner)
        (running, "pending", now - dt.timedelta(seconds=5), None),    # due now
        (running, "pending", now - dt.timedelta(minutes=1), None),    # due now
        (running, "pending", now, None),                              # due now
        (running, "pending", now + dt.timedelta(minutes=5), None),    # a retry later: not due
        (running, "pending", now - dt.timedelta(seconds=1), "other"),  # claimed: not waiting
        (running, "sent", None, None),
        (running, "sent", None, None),
        (finished, "failed", None, None),
        (finished, "expired", None, None),
        (finished, "unknown", None, None),
    ]
    for client, (mailing, status, next_at, owner) in zip(clients, rows):
        Message.create(mailing=mailing, client_id=client.id, phone=client.phone, status=status,
                       next_attempt_at=next_at, lease_owner=owner)
    assert not Message.select().where(Message.client_id.is_null()).exists()  # as the service writes them


@pytest.fixture
def queue():
    huey = MemoryHuey("metrics-test")

    @huey.task()
    def noop():
        pass

    noop()
    noop()  # two tasks waiting in the queue
    return huey


@pytest.fixture
def server(queue):
    httpd, _ = metrics.start_metrics_server(0, "127.0.0.1", huey=queue)
    assert httpd.server_address[0] == "127.0.0.1"
    yield f"http://127.0.0.1:{httpd.server_port}/metrics"
    metrics.stop_metrics_server()


def scrape(url):
    with requests.Session() as session:
        session.trust_env = False  # no proxy for 127.0.0.1
        response = session.get(url, timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test_gauges_from_the_database(seeded, server):
    s = scrape(server)
    assert value(s, "mailer_consumer_up") == 1
    assert value(s, "mailer_db_up") == 1
    expected = {"pending": 5, "sent": 2, "failed": 1, "expired": 1, "unknown": 1, "cancelled": 0}
    assert {status: value(s, "mailer_messages", status=status) for status in expected} == expected
    assert {state: value(s, "mailer_mailings", state=state) for state in vocabulary.MAILING_STATES} == {
        "scheduled": 1, "running": 1, "paused": 0, "finished": 1, "cancelled": 0}
    assert value(s, "mailer_queue_depth") == 3 + 2  # due now + huey tasks waiting

    # The gauges follow the database at each scrape.
    Message.update(status="sent").where(Message.status == "pending").execute()
    s = scrape(server)
    assert value(s, "mailer_messages", status="pending") == 0
    assert value(s, "mailer_messages", status="sent") == 7
    assert value(s, "mailer_queue_depth") == 2


def test_attempt_counter_and_latency_histogram(seeded, server):
    before = scrape(server)
    for outcome in metrics.OUTCOMES:  # every outcome is exported, even at 0
        assert value(before, "mailer_attempts_total", outcome=outcome) is not None
    metrics.observe_attempts([("sent", 0.8), ("sent", 12.0), ("retry", 2500.0), ("failed", 40.0),
                              ("expired", None), ("something-new", 3.0)])
    metrics.observe_attempts(iter([("sent", 20_000.0)]))  # generators are fine; beyond 10 s
    after = scrape(server)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert {o: delta("mailer_attempts_total", outcome=o) for o in metrics.OUTCOMES} == {
        "sent": 3, "retry": 1, "failed": 1, "expired": 1, "cancelled": 0, "unknown": 1, "suppressed": 0}
    # Six latencies observed (the expired attempt never reached the wire).
    assert delta("mailer_send_latency_seconds_count") == 6
    assert delta("mailer_send_latency_seconds_sum") == pytest.approx(
        (0.8 + 12 + 2500 + 40 + 3 + 20_000) / 1000)
    assert delta("mailer_send_latency_seconds_bucket", le="0.001") == 1
    assert delta("mailer_send_latency_seconds_bucket", le="0.025") == 3  # 0.8, 3 and 12 ms
    assert delta("mailer_send_latency_seconds_bucket", le="10.0") == 5  # all but the 20 s one
    assert delta("mailer_send_latency_seconds_bucket", le="+Inf") == 6
    assert not any(name.endswith("_created") for name, _ in after)
    buckets = sorted(float(dict(labels)["le"]) for name, labels in after
                     if name == "mailer_send_latency_seconds_bucket")
    assert buckets[0] == 0.001 and buckets[-2] == 10.0


def test_database_errors_do_not_break_the_endpoint(seeded, database, server, tmp_path):
    models.db.close()
    models.db.initialize(pw.SqliteDatabase(str(tmp_path / "no-such-dir" / "x.db")))
    s = scrape(server)
    assert value(s, "mailer_consumer_up") == 1
    assert value(s, "mailer_db_up") == 0
    assert value(s, "mailer_messages", status="pending") is None
    assert value(s, "mailer_queue_depth") is None
    # Back to a good database: the next scrape is whole again.
    models.open_database(database)
    s = scrape(server)
    assert value(s, "mailer_db_up") == 1 and value(s, "mailer_messages", status="sent") == 2


def test_start_from_env():
    assert metrics.start_from_settings(Settings.from_env({})) is None
    assert metrics.start_from_settings(Settings.from_env({"MAILER_METRICS_PORT": "http"})) is None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # A port already taken is logged, not fatal: the consumer keeps sending.
        assert metrics.start_from_settings(Settings.from_env({"MAILER_METRICS_PORT": str(port)})) is None
    port = free_port()
    started = metrics.start_from_settings(Settings.from_env({"MAILER_METRICS_PORT": str(port), "MAILER_METRICS_ADDR": "127.0.0.1"}))
    try:
        assert started is not None and started[0].server_port == port
        assert metrics.start_metrics_server(port) is started  # one server per process
    finally:
        metrics.stop_metrics_server()


def test_a_real_consumer_serves_its_metrics(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    port = free_port()
    world.import_clients([(p, "", "", "UTC") for p in phones(20)])
    world.start_consumer(MAILER_METRICS_PORT=str(port))
    mailing = world.mailer_json("mailings", "create", "--text", "Ж" * 71, "--start", "now", "--end", "+5m")
    wait_for(lambda: world.statuses(mailing["id"]).get("sent") == 20, message="20 sent")
    url = f"http://127.0.0.1:{port}/metrics"
    samples = wait_for(lambda: (lambda s: s if value(s, "mailer_attempts_total", outcome="sent") == 20 else None)(
        scrape(url)), message="the scrape to count 20 sends")
    assert value(samples, "mailer_messages", status="sent") == 20
    assert value(samples, "mailer_mailings", state="running") == 1
    assert value(samples, "mailer_consumer_up") == 1
    assert value(samples, "mailer_send_latency_seconds_count") == 20
    accepted = [json.loads(line)["text"] for line in open(sim.log_path, encoding="utf-8")]
    assert len(accepted) == 20 and set(accepted) == {"Ж" * 71}
    assert value(samples, "mailer_parts_sent_total", encoding="UCS-2") == 2 * 20  # 71 Cyrillic: 2 parts
    assert value(samples, "mailer_parts_sent_total", encoding="GSM-7") == 0
