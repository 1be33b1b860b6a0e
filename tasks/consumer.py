"""The huey consumer tuned for this service, with its heartbeat and start-up recovery."""
import logging
import os
import threading

import models
from tasks import dispatcher, gateway, huey, metrics, sweep, wake, DISPATCH_SLOTS
import tasks.report  # noqa: F401  (registers the daily report's periodic task)

log = logging.getLogger("mailer.consumer")


RECOVER_EVERY = 10.0  # seconds between looks for dead consumers


def _heartbeat(stop):
    """Beat, in a thread of its own: nothing else this consumer waits for (a takeover blocked on
    another consumer's row locks, say) may make it look dead."""
    description = gateway().describe()
    failing = False
    while not stop.wait(dispatcher.HEARTBEAT_EVERY):
        try:
            dispatcher.beat(description)
        except Exception as exc:  # a locked database or a full disk must not kill the heartbeat
            failing = True
            log.warning("heartbeat failed: %s", exc)
            continue
        if failing:
            # Storage is back: whatever gave up while it was away starts again now, not at the
            # next minute's sweep.
            log.warning("storage is back; waking the dispatchers")
            failing = False
            wake()


def _watch(stop):
    """Look for consumers that died holding messages: a live consumer takes over their work within
    seconds rather than at the next minute's sweep."""
    while not stop.wait(RECOVER_EVERY):
        try:
            recovered = dispatcher.recover()
            if recovered["released"] or recovered["unknown"] or recovered["retried"]:
                log.warning("took over from dead consumers: %s", recovered)
                wake()
        except Exception as exc:
            log.warning("looking for dead consumers failed: %s", exc)


def run_consumer(workers=None):
    """Run the consumer in this (main) thread until SIGTERM/SIGINT."""
    workers = workers or int(os.environ.get("MAILER_WORKERS", str(DISPATCH_SLOTS + 2)))
    dispatcher.check_settings()
    gateway()  # a token that cannot be sent is refused here, before anything starts
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True,
        # An idle consumer polls the queue at least every 0.25 s, so new work starts within a second.
        initial_delay=0.05, backoff=1.15, max_delay=0.25, scheduler_interval=1,
        graceful_signal="TERM")
    dispatcher.beat(gateway().describe())
    if models.gateway_pause():
        # A consumer starts with the token it was given now: let it try.
        models.set_gateway_pause(None, "")
    log.info("consumer %s: %d workers, sending through %s", dispatcher.OWNER, workers,
             gateway().describe())
    metrics.start_from_env()
    sweep.call_local()  # recover what a killed consumer left and start what is due
    wake()
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(stop,), name="heartbeat", daemon=True).start()
    threading.Thread(target=_watch, args=(stop,), name="watch", daemon=True).start()
    try:
        consumer.run()
    finally:
        stop.set()
        dispatcher.forget_self()
        models.db.close()
