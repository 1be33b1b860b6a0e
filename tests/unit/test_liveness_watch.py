"""The Watch judges a consumer dead only by watching its heartbeat count stand still for `stale`
seconds of the watcher's own clock (injected here), or by finding its process gone on this node."""
import datetime as dt
import os
from types import SimpleNamespace

import pytest

from engine import OWNER
from engine.liveness import NODE, PROC_START, Watch

pytestmark = pytest.mark.unit

STALE = 10.0


def watch():
    return Watch(stale=dt.timedelta(seconds=STALE))


def beat(seq, node="another-host/pid:[1]", pid=1, proc_start=None):
    return SimpleNamespace(seq=seq, node=node, pid=pid, proc_start=proc_start)


def at(t):
    return lambda: t


def test_a_new_owner_is_not_dead_at_first_sight_however_late():
    assert watch().dead(["a"], {"a": beat(5)}, clock=at(1_000_000.0)) == []


def test_an_unchanged_count_is_dead_only_after_stale_seconds():
    w, beats = watch(), {"a": beat(5)}
    assert w.dead(["a"], beats, clock=at(100.0)) == []
    assert w.dead(["a"], beats, clock=at(100.0 + STALE - 0.001)) == []
    assert w.dead(["a"], beats, clock=at(100.0 + STALE)) == ["a"]


def test_a_moving_count_is_never_dead():
    w = watch()
    for step in range(50):
        assert w.dead(["a"], {"a": beat(step)}, clock=at(step * STALE)) == []


def test_a_count_that_moves_restarts_the_wait():
    w = watch()
    w.dead(["a"], {"a": beat(1)}, clock=at(0.0))
    w.dead(["a"], {"a": beat(2)}, clock=at(STALE - 1))
    assert w.dead(["a"], {"a": beat(2)}, clock=at(STALE + 1)) == []
    assert w.dead(["a"], {"a": beat(2)}, clock=at(2 * STALE - 1)) == ["a"]


def test_a_lease_holder_without_a_heartbeat_is_dead_after_stale_seconds():
    w = watch()
    assert w.dead(["gone"], {}, clock=at(0.0)) == []
    assert w.dead(["gone"], {}, clock=at(STALE)) == ["gone"]


def test_only_the_owners_that_stood_still_are_dead():
    w = watch()
    w.dead(["a", "b"], {"a": beat(1), "b": beat(1)}, clock=at(0.0))
    assert w.dead(["a", "b"], {"a": beat(1), "b": beat(2)}, clock=at(STALE)) == ["a"]


def test_an_owner_out_of_sight_is_new_again_when_it_comes_back():
    w = watch()
    w.dead(["a"], {"a": beat(1)}, clock=at(0.0))
    w.dead([], {}, clock=at(1.0))
    assert w.dead(["a"], {"a": beat(1)}, clock=at(STALE + 5)) == []


def test_this_consumer_never_takes_itself_for_dead():
    w = watch()
    w.dead([OWNER], {OWNER: beat(1)}, clock=at(0.0))
    assert w.dead([OWNER], {OWNER: beat(1)}, clock=at(100 * STALE)) == []


@pytest.mark.skipif(not NODE, reason="no /proc boot id and PID namespace here")
def test_on_this_node_a_process_gone_is_dead_at_once_and_a_live_one_is_watched():
    w = watch()
    alive = beat(1, node=NODE, pid=os.getpid(), proc_start=PROC_START)
    reused_pid = beat(1, node=NODE, pid=os.getpid(), proc_start=PROC_START + 1)  # another process's start
    assert w.dead(["alive", "reused"], {"alive": alive, "reused": reused_pid}, clock=at(0.0)) == ["reused"]
