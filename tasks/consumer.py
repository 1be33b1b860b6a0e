"""The huey consumer tuned for this service: the huey workers for the tasks, and beside them the
engine's dispatcher threads, a heartbeat thread and a watch thread that takes over from dead
consumers."""
import logging
import threading

import models
import tasks
from domain import settings as _settings
from domain import states, stats
from domain.times import utcnow
from engine import OWNER, dispatcher, gateways, liveness
from engine.storage import STORAGE_ERRORS
from ops import metrics
from tasks import huey, sweep, wake

log = logging.getLogger("mailer.consumer")
_gateway = None


def gateway():
    """The process's one gateway client (one pool of connections for all its dispatchers)."""
    global _gateway
    if _gateway is None:
        settings = _settings.current()
        _gateway = gateways.gateway_from_settings(
            settings, pool_size=settings.dispatchers * settings.concurrency)
    return _gateway


RECOVER_EVERY = 5.0  # seconds between looks for dead consumers and overdue answers


def _heartbeat(stop):
    """Beat, in a thread of its own: nothing else this consumer waits for (a takeover blocked on
    another consumer's row locks, say) may make it look dead."""
    description = gateway().describe()
    failing = False
    unanswered = False
    while not stop.wait(stats.HEARTBEAT_EVERY):
        health = gateway().health.current()
        if health.failing != unanswered:
            unanswered = health.failing
            if unanswered:
                log.warning("the gateway is not answering since %sZ: %s", health.failing_since.isoformat(),
                            health.cause)
            else:
                log.warning("the gateway answers again")
        try:
            # The gateway's health rides on the beat: what the sending threads' answers found,
            # written every HEARTBEAT_EVERY at no cost to the send path.
            liveness.beat(description, health)
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
            recovered = liveness.recover()
            if recovered["released"] or recovered["unknown"] or recovered["retried"]:
                log.warning("took over from dead consumers: %s", recovered)
                wake()
            overdue = liveness.settle_overdue()
            if overdue:
                log.warning("%d message(s) still on the wire after their mailing's end and the read "
                            "timeout are in doubt now", overdue)
        except Exception as exc:
            log.warning("looking for dead consumers failed: %s", exc)


def _dispatcher(stop):
    """Send whatever is due, then wait for a wake-up, the next due time or IDLE_LOOK, whichever comes
    first. Storage errors wait for storage; anything else is logged and the loop goes on."""
    while not stop.is_set():
        try:
            if dispatcher.dispatch(gateway(), stop=stop):
                continue
            next_due = dispatcher.due_soon()
        except STORAGE_ERRORS as exc:
            log.warning("dispatcher: storage refused (%s); looking again shortly", exc)
            next_due = None
            stop.wait(0.5)
        except Exception:
            log.exception("dispatcher failed; looking again shortly")
            next_due = None
            stop.wait(1.0)
        wait = tasks.IDLE_LOOK if next_due is None else (next_due - utcnow()).total_seconds()
        if wait > 0.02:
            tasks.wakeup.wait(min(wait, tasks.IDLE_LOOK))
        tasks.wakeup.clear()


def run_dispatchers(stop, count=None):
    count = count or _settings.current().dispatchers
    threads = [threading.Thread(target=_dispatcher, args=(stop,), name=f"dispatcher-{i}", daemon=True)
               for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def run_consumer(workers=None):
    """Run the consumer in this (main) thread until SIGTERM/SIGINT."""
    settings = _settings.current()
    workers = workers or settings.workers
    gateway()  # credentials missing or that cannot be sent are refused here, before anything starts
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=True,
        # An idle consumer polls the queue at least every 0.25 s, so new work starts within a second.
        initial_delay=0.05, backoff=1.15, max_delay=0.25, scheduler_interval=1,
        graceful_signal="TERM")
    liveness.beat(gateway().describe(), gateway().health.current())
    if states.gateway_pause():
        # A consumer starts with the token it was given now: let it try.
        states.set_gateway_pause(None, "")
    log.info("consumer %s: %d workers, sending through %s", OWNER, workers, gateway().describe())
    metrics.start_from_settings(settings, huey=huey)
    sweep.call_local()  # recover what a killed consumer left and start what is due
    wake()
    stop = threading.Event()
    threading.Thread(target=_heartbeat, args=(stop,), name="heartbeat", daemon=True).start()
    threading.Thread(target=_watch, args=(stop,), name="watch", daemon=True).start()
    dispatchers = run_dispatchers(stop)
    try:
        consumer.run()
    finally:
        stop.set()
        tasks.wakeup.set()
        # What is on the wire is settled before the consumer goes: a graceful stop leaves nothing
        # in doubt. Claims not yet sent are handed back by the dispatchers as they finish.
        for thread in dispatchers:
            thread.join(timeout=settings.budget + 15)
        liveness.forget_self()
        models.db.close()
