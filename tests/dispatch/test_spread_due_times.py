"""A spread mailing's due times, on SQLite and PostgreSQL: its messages due evenly over the time it
has (to its end, or per client zone to its window's close), respread after a resume or a new end,
clients attached while it runs spread over what is left, and due now once spread is turned off.
Read from the database; tests/test_spread.py sends one through a consumer."""
import datetime as dt
import io

import pytest

import service
from domain import spread, stats
from domain.times import utcnow
from domain.vocabulary import PENDING, RUNNING
from domain.windows import format_window
from models import Client, Mailing, Message

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]

GUARD = dt.timedelta(seconds=0.5)  # MAILER_END_GUARD's default


def add_clients(n, tz="Europe/Moscow", first=79000000000, tag="t"):
    rows = "".join(f"{first + i},900,{tag},{tz}\n" for i in range(n))
    assert service.import_clients(io.StringIO("phone,operator,tag,tz\n" + rows)).imported == n


def due_times(mailing_id, tz=None):
    query = Message.select(Message.next_attempt_at).where(Message.mailing == mailing_id)
    if tz is not None:
        query = query.join(Client, on=(Client.id == Message.client_id)).where(Client.tz == tz)
    return [m.next_attempt_at for m in query.order_by(Message.id)]


def margin(start, stop):
    """What a spread keeps free before `stop`: 1 % of the span, a minute at most."""
    return min((stop - start) * 0.01, dt.timedelta(minutes=1))


def assert_even(times, start, stop):
    """From `start`, at equal steps, the last one a step before `stop` less the margin (to the
    microsecond)."""
    end = stop - margin(start, stop)
    span_us = (end - start) // dt.timedelta(microseconds=1)
    for k, when in enumerate(times):
        offset = (when - start) // dt.timedelta(microseconds=1)
        assert abs(offset - k * span_us / len(times)) <= 1, (k, when, start)


def test_a_spread_mailing_is_due_evenly_until_its_end_less_the_guard_and_a_margin(backend):
    add_clients(60)
    before = utcnow()
    mailing = service.create_mailing(text="spread", start="now", end="+10m", spread=True)
    assert mailing.state == RUNNING and mailing.spread
    times = due_times(mailing.id)
    start = mailing.started_at
    assert before <= start <= utcnow()
    # 600 s less the guard: 599.5 s, less 1 % of it (5.995 s): the last one is due a step before that
    stop = mailing.end_at - GUARD
    assert_even(times, start, stop)
    assert times[-1] < stop - dt.timedelta(seconds=5.99)
    assert sorted(times) == times  # in id order


def test_a_long_spread_keeps_at_most_a_minute_free_before_its_end(backend):
    add_clients(10)
    mailing = service.create_mailing(text="spread", start="now", end="+1d", spread=True)
    times = due_times(mailing.id)
    assert_even(times, mailing.started_at, mailing.end_at - GUARD)
    assert margin(mailing.started_at, mailing.end_at - GUARD) == dt.timedelta(minutes=1)


def test_a_windowed_spread_goes_in_each_zones_first_opening_until_it_closes(backend):
    """A window open now in UTC for 30 more minutes, which Moscow (UTC+3, no DST) only reaches
    tomorrow: UTC's clients are due from now until its close, Moscow's over tomorrow's opening."""
    add_clients(30, tz="UTC")
    add_clients(20, tz="Europe/Moscow", first=79100000000)
    now = utcnow()
    minute = now.hour * 60 + now.minute
    window = format_window((minute - 60) % 1440, (minute + 30) % 1440)
    mailing = service.create_mailing(text="windowed", start="now", end="+2d", window=window, spread=True)
    start, midnight = mailing.started_at, dt.datetime(now.year, now.month, now.day)
    assert_even(due_times(mailing.id, "UTC"), start, midnight + dt.timedelta(minutes=minute + 30))
    moscow_open = midnight + dt.timedelta(minutes=minute - 60 - 180, days=1)
    assert_even(due_times(mailing.id, "Europe/Moscow"), moscow_open, moscow_open + dt.timedelta(minutes=90))
    # what the dry run and the console say comes from the same plan
    planned = {s.tz: s for s in spread.spans(start, mailing.end_at, (mailing.window_start, mailing.window_end),
                                             None, ["UTC", "Europe/Moscow"])}
    assert planned["Europe/Moscow"].start == moscow_open and planned["UTC"].start == start


def test_a_zone_whose_window_opens_only_after_the_end_is_left_alone(backend):
    add_clients(5, tz="UTC")
    now = utcnow()
    minute = now.hour * 60 + now.minute
    window = format_window((minute + 120) % 1440, (minute + 180) % 1440)  # opens in 2 h; the end is in 1
    mailing = service.create_mailing(text="never", start="now", end="+1h", window=window, spread=True)
    assert due_times(mailing.id) == [mailing.started_at] * 5  # the engine expires them when claimed


def test_clients_attached_while_it_runs_are_spread_over_what_is_left(backend):
    add_clients(10)
    mailing = service.create_mailing(text="spread", start="now", end="+10m", spread=True)
    first = due_times(mailing.id)
    add_clients(20, first=79200000000)
    times = due_times(mailing.id)
    assert times[:10] == first  # the first ten stay where they were
    late = Message.select(Message.created_at).where(Message.mailing == mailing.id).order_by(Message.id.desc()).first()
    assert_even(times[10:], late.created_at, mailing.end_at - GUARD)


def test_a_resume_and_a_new_end_spread_what_is_unsent_from_then(backend):
    add_clients(40)
    mailing = service.create_mailing(text="spread", start="now", end="+10m", spread=True)
    # one message is on the wire, one was tried and waits for its retry: neither moves
    wire, retry = [m.id for m in Message.select(Message.id).where(Message.mailing == mailing.id)
                   .order_by(Message.id).limit(2)]
    later = utcnow() + dt.timedelta(minutes=5)
    Message.update(sending_since=utcnow(), lease_owner="someone").where(Message.id == wire).execute()
    Message.update(attempts=1, next_attempt_at=later).where(Message.id == retry).execute()
    service.set_mailing_state(mailing.id, "pause")
    before = due_times(mailing.id)
    service.set_mailing_state(mailing.id, "resume")
    resumed = Mailing.get_by_id(mailing.id).updated_at
    times = due_times(mailing.id)
    assert times[:2] == before[:2]
    assert_even(times[2:], resumed, mailing.end_at - GUARD)
    # a new end (the edit's own time is the mailing's updated_at)
    edited = service.edit_mailing(mailing.id, end="+20m")
    assert_even(due_times(mailing.id)[2:], edited.updated_at, edited.end_at - GUARD)
    assert due_times(mailing.id)[:2] == before[:2]


def test_spread_turned_off_makes_what_was_never_tried_due_now_and_on_spreads_it_again(backend):
    add_clients(30)
    mailing = service.create_mailing(text="spread", start="now", end="+10m", spread=True)
    retry = Message.select(Message.id).where(Message.mailing == mailing.id).order_by(Message.id).first().id
    later = utcnow() + dt.timedelta(minutes=5)
    Message.update(attempts=1, next_attempt_at=later).where(Message.id == retry).execute()
    off = service.edit_mailing(mailing.id, spread=False)
    assert not off.spread
    times = due_times(mailing.id)
    assert times[0] == later  # a retry keeps its backoff
    assert times[1:] == [off.updated_at] * 29
    on = service.edit_mailing(mailing.id, spread=True)
    assert_even(due_times(mailing.id)[1:], on.updated_at, on.end_at - GUARD)
    assert Message.select().where((Message.mailing == mailing.id) & (Message.status == PENDING)).count() == 30


def test_a_mailing_not_spread_is_due_at_once(backend):
    add_clients(10)
    mailing = service.create_mailing(text="at once", start="now", end="+10m")
    assert not mailing.spread
    assert due_times(mailing.id) == [mailing.started_at] * 10


def test_until_when_a_spread_mailing_sends_before_and_after_its_start(backend):
    """What the console's detail says: a scheduled one, the end of its plan from its start; once
    started, when its last pending message is due; nothing pending, None."""
    add_clients(8)
    mailing = service.create_mailing(text="later", start="+1h", end="+2h", spread=True)
    row = stats.mailing_row(mailing.id)
    assert row.spread and not row.started
    stop = mailing.end_at - GUARD
    assert stats.spread_until(row) == stop - margin(mailing.start_at, stop)
    started = service.create_mailing(text="now", start="now", end="+1h", spread=True)
    assert stats.spread_until(stats.mailing_row(started.id)) == max(due_times(started.id))
    Message.update(status="sent").where(Message.mailing == started.id).execute()
    assert stats.spread_until(stats.mailing_row(started.id)) is None
