"""A spread mailing through a real consumer and the gateway simulator: its messages reach the gateway
evenly until its end, or per client zone until its window closes, never all at once and never at or
after the end. Judged by the simulator's log (`received_at`) and the database; the due times'
arithmetic on both databases is tests/dispatch/test_spread_due_times.py's."""
import datetime as dt
import zoneinfo

import pytest

from domain.windows import format_window
from support import phones, wait_for
from simulator import read_log

UTC = dt.timezone.utc

# Each judged by when its sends arrive: one after another (conftest.py)
pytestmark = pytest.mark.xdist_group("timing")


def parse_utc(text):
    return dt.datetime.fromisoformat(text.replace("Z", "")).replace(tzinfo=UTC)


def slices(received, start, end, count):
    """How many of the `received` times (epoch seconds) fall in each of `count` equal slices of
    [start, end)."""
    width = (end - start) / count
    found = [0] * count
    for at in received:
        found[min(count - 1, int((at - start) // width))] += 1
    return found


def test_sixty_clients_spread_over_thirty_seconds_arrive_evenly_before_the_end(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(60)])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "evenly", "--start", "now", "--end", "+30s",
                                "--spread")
    assert mailing["spread"] is True
    start, end = parse_utc(mailing["started_at"]).timestamp(), parse_utc(mailing["end"]).timestamp()
    wait_for(lambda: len(read_log(sim.log_path)) == 60, timeout=45, message="all 60 sends")
    received = sorted(e["received_at"] for e in read_log(sim.log_path))
    assert start <= received[0] and received[-1] < end - 0.5  # nothing within the end guard
    # 29.5 s less the margin, in six slices of about 5 s: 10 in each, give or take a poll
    counts = slices(received, start, end - 0.5, 6)
    assert all(7 <= n <= 13 for n in counts), counts
    assert sum(1 for at in received if at < start + 2) <= 6, received[:8]  # not all at once
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 60}, message="all 60 recorded sent")
    assert world.mailer_json("stats", mailing["id"])["spread"] is True


def test_a_windowed_spread_goes_until_the_window_closes_in_the_clients_zone(world, simulator):
    """Clients in a zone whose window closes at the first minute turn at least 30 s ahead (30-90 s),
    a mailing that ends an hour later: everything arrives evenly before the close."""
    sim = simulator()
    world.use_gateway(sim)
    zone = "Asia/Kolkata"  # UTC+05:30: a window's minutes in a zone of its own
    world.import_clients([(p, "", "", zone) for p in phones(30)])
    world.start_consumer()
    local = dt.datetime.now(zoneinfo.ZoneInfo(zone)) + dt.timedelta(seconds=30)
    closes = local.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    minute = closes.hour * 60 + closes.minute
    window = format_window((minute - 120) % 1440, minute)
    mailing = world.mailer_json("mailings", "create", "--text", "windowed", "--start", "now", "--end", "+1h",
                                "--window", window, "--spread")
    start, close = parse_utc(mailing["started_at"]).timestamp(), closes.timestamp()
    assert 25 <= close - start <= 95
    wait_for(lambda: len(read_log(sim.log_path)) == 30, timeout=110, message="all 30 sends")
    received = sorted(e["received_at"] for e in read_log(sim.log_path))
    assert start <= received[0] and received[-1] < close
    counts = slices(received, start, close, 3)
    assert all(7 <= n <= 13 for n in counts), counts
    assert received[-1] > close - (close - start) / 3  # spread until the close, not sent early
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 30}, message="all 30 recorded sent")


def test_spread_turned_off_while_it_runs_sends_the_rest_now(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(20)])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "slowly", "--start", "now", "--end", "+1h",
                                "--spread")
    wait_for(lambda: read_log(sim.log_path), message="the first send, at once")
    assert len(read_log(sim.log_path)) == 1  # the next is due three minutes later
    edited = world.mailer_json("mailings", "edit", mailing["id"], "--spread", "off")
    assert edited["spread"] is False
    wait_for(lambda: len(read_log(sim.log_path)) == 20, timeout=15, message="the rest, now")
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 20}, message="all 20 recorded sent")
