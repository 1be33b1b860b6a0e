"""Prometheus metrics of a consumer process, served over HTTP when MAILER_METRICS_PORT is set.

Gauges are computed when Prometheus scrapes, by a custom collector running a few GROUP BY queries
(never one per row); the attempt counter and the latency histogram are fed by the dispatcher through
`observe_attempts` after each settle, so they count this process's attempts since it started
(Prometheus' `rate()` / `increase()` handle restarts). A database error during a scrape does not
break the endpoint: the database gauges are left out and `mailer_db_up` is 0.

| Metric | Type | Meaning |
|---|---|---|
| mailer_messages{status} | gauge | messages by status, all mailings |
| mailer_mailings{state} | gauge | mailings by state |
| mailer_attempts_total{outcome} | counter | attempts settled by this process: sent, retry, failed, expired, cancelled, unknown |
| mailer_send_latency_seconds | histogram | gateway round trip of each attempt that reached the wire (1 ms .. 10 s buckets) |
| mailer_queue_depth | gauge | pending messages of running mailings due now + tasks waiting in the huey queue |
| mailer_consumer_up | gauge | 1 while this consumer serves metrics |
| mailer_db_up | gauge | 1 when the last scrape could read the database, else 0 |
"""
import logging
import threading

from prometheus_client import (CollectorRegistry, Counter, Histogram, disable_created_metrics,
                               start_http_server)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import models
from domain import segments, stats
from domain.vocabulary import ATTEMPT_OUTCOMES, MAILING_STATES, MESSAGE_STATUSES

log = logging.getLogger("mailer.metrics")

OUTCOMES = ATTEMPT_OUTCOMES
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# No `*_created` series: they only add a sample per label set that Prometheus stores as a gauge.
disable_created_metrics()
REGISTRY = CollectorRegistry(auto_describe=True)

ATTEMPTS = Counter("mailer_attempts", "Attempts settled by this consumer, by outcome "
                   "(sent, retry, failed, expired, cancelled, unknown).",
                   ["outcome"], registry=REGISTRY)
LATENCY = Histogram("mailer_send_latency_seconds", "Gateway round trip of each attempt that reached "
                    "the wire, in seconds.", buckets=LATENCY_BUCKETS, registry=REGISTRY)
PARTS_SENT = Counter("mailer_parts_sent", "SMS parts (segments, what the gateway bills) of the "
                     "messages this consumer got accepted, by encoding (GSM-7 or UCS-2).",
                     ["encoding"], registry=REGISTRY)
for _outcome in OUTCOMES:
    ATTEMPTS.labels(_outcome)  # every outcome is exported from the start, at 0
for _encoding in (segments.GSM7, segments.UCS2):
    PARTS_SENT.labels(_encoding)


def observe_attempts(verdicts):
    """Count settled attempts. `verdicts`: iterable of (outcome, latency_ms or None[, text]); an
    outcome outside OUTCOMES counts as "unknown"; a latency of None (no request made) is not
    observed; the text of a message sent counts its SMS parts. Never raises: metrics must not break
    sending."""
    try:
        for outcome, latency_ms, *text in verdicts:
            ATTEMPTS.labels(outcome if outcome in OUTCOMES else "unknown").inc()
            if latency_ms is not None and latency_ms >= 0:
                LATENCY.observe(latency_ms / 1000.0)
            if text and outcome == "sent":
                counted = segments.count(text[0])
                PARTS_SENT.labels(counted.encoding).inc(counted.parts)
    except Exception:  # pragma: no cover - defensive
        log.exception("observe_attempts failed")


class DatabaseCollector(Collector):
    """Gauges read at scrape time: a GROUP BY per family, each query bounded by the database's
    indexes ((status, next_attempt_at) on message, state on mailing)."""

    def __init__(self, huey=None):
        self._huey = huey
        self._lock = threading.Lock()  # one scrape at a time reads the database

    def describe(self):
        # Known families without touching the database (registration must not query).
        return [GaugeMetricFamily("mailer_messages", "", labels=["status"]),
                GaugeMetricFamily("mailer_mailings", "", labels=["state"]),
                GaugeMetricFamily("mailer_queue_depth", ""),
                GaugeMetricFamily("mailer_consumer_up", ""),
                GaugeMetricFamily("mailer_db_up", "")]

    def collect(self):
        up = GaugeMetricFamily("mailer_consumer_up", "1 while this consumer serves metrics.")
        up.add_metric([], 1)
        yield up
        with self._lock:
            db_values, db_ok = self._read_database()
            queued = self._huey_pending()
        db_up = GaugeMetricFamily("mailer_db_up", "1 when this scrape could read the database.")
        db_up.add_metric([], 1 if db_ok else 0)
        yield db_up
        if db_ok:
            messages, mailings, due_now = db_values
            family = GaugeMetricFamily("mailer_messages", "Messages by status, all mailings.",
                                       labels=["status"])
            for status in sorted(set(MESSAGE_STATUSES) | set(messages)):
                family.add_metric([status], messages.get(status, 0))
            yield family
            family = GaugeMetricFamily("mailer_mailings", "Mailings by state.", labels=["state"])
            for state in sorted(set(MAILING_STATES) | set(mailings)):
                family.add_metric([state], mailings.get(state, 0))
            yield family
            depth = GaugeMetricFamily(
                "mailer_queue_depth",
                "Pending messages of running mailings due now plus tasks waiting in the huey queue.")
            depth.add_metric([], due_now + (queued or 0))
            yield depth

    def _read_database(self):
        try:
            with models.db.connection_context():
                messages, mailings = stats.totals()
                return (messages, mailings, stats.due_now()), True
        except Exception as exc:
            log.warning("metrics: cannot read the database: %s", exc)
            return None, False

    def _huey_pending(self):
        if self._huey is None:
            return None
        try:
            return self._huey.pending_count()
        except Exception as exc:
            log.warning("metrics: cannot read the huey queue: %s", exc)
            return None


_server = None
_collector = None


def start_metrics_server(port, addr="127.0.0.1", huey=None):
    """Serve /metrics on addr:port in a daemon thread; returns (server, thread). Port 0 picks a free
    port: `server.server_port` tells which. One server per process: calling it again returns the
    first. With `huey`, its waiting tasks count in the queue depth; the database is the one models.open_database opened."""
    global _server, _collector
    if _server is not None:
        return _server
    _collector = DatabaseCollector(huey=huey)
    REGISTRY.register(_collector)
    try:
        server, thread = start_http_server(int(port), addr=addr, registry=REGISTRY)
    except Exception:
        REGISTRY.unregister(_collector)
        _collector = None
        raise
    _server = (server, thread)
    log.info("metrics on http://%s:%d/metrics", addr, server.server_port)
    return _server


def stop_metrics_server():
    """Stop the server started by start_metrics_server (tests; a consumer simply exits)."""
    global _server, _collector
    if _server is None:
        return
    server, thread = _server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _server = _collector = None


def start_from_settings(settings, huey=None):
    """Start the metrics server when MAILER_METRICS_PORT is set (MAILER_METRICS_ADDR, default
    127.0.0.1; 0.0.0.0 in a container). Returns the server or None. A port that cannot be bound is
    logged, not fatal: the consumer keeps sending."""
    port, addr = settings.metrics_port, settings.metrics_addr or "127.0.0.1"
    if not port:
        return None
    if not port.isdigit() or int(port) > 65535:
        log.error("MAILER_METRICS_PORT must be a port number; got %r: metrics are off", port)
        return None
    try:
        return start_metrics_server(int(port), addr, huey=huey)
    except OSError as exc:
        log.error("metrics: cannot listen on %s:%s: %s: metrics are off", addr, port, exc)
        return None


__all__ = ["observe_attempts", "start_metrics_server", "stop_metrics_server", "start_from_settings",
           "DatabaseCollector", "REGISTRY", "OUTCOMES", "LATENCY_BUCKETS"]
