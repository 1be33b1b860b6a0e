"""The huey consumer tuned for this service, with its heartbeat and start-up recovery."""
import logging
import os
import threading

import models
from tasks import dispatcher, gateway, huey, sweep, wake, DISPATCH_SLOTS

log = logging.getLogger("mailer.consumer")


def _heartbeat(stop):
    description = gateway().describe()
    while not stop.wait(dispatcher.HEARTBEAT_EVERY):
        try:
            dispatcher.beat(description)
        except Exception:  # a locked database must not kill the heartbeat
            log.exception("heartbeat failed")


def run_consumer(workers=None):
    """Run the consumer in this (main) thread until SIGTERM/SIGINT."""
    workers = workers or int(os.environ.get("MAILER_WORKERS", str(DISPATCH_SLOTS + 2)))
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True,
        # An idle consumer polls the queue at least every 0.25 s, so new work starts within a second.
        initial_delay=0.05, backoff=1.15, max_delay=0.25, scheduler_interval=1,
        graceful_signal="TERM")
    dispatcher.beat(gateway().describe())
    log.info("consumer %s: %d workers, sending through %s", dispatcher.OWNER, workers,
             gateway().describe())
    sweep.call_local()  # recover what a killed consumer left and start what is due
    wake()
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(stop,), name="heartbeat", daemon=True).start()
    try:
        consumer.run()
    finally:
        stop.set()
        dispatcher.forget_self()
        models.db.close()
