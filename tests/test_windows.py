"""Sending windows in the client's local time: the arithmetic, and a real consumer obeying it, across
midnight and across a DST change (the consumer's clock shifted with libfaketime)."""
import datetime as dt
import glob
import os
import time
import zoneinfo

import pytest

import models
from domain import times, windows
from support import wait_for
from simulator import read_log

UTC = dt.timezone.utc
W = windows.parse_window


def utc(*args):
    return dt.datetime(*args)


@pytest.mark.parametrize("now, tz, window, expected", [
    # Inside a plain window: now.
    (utc(2026, 11, 22, 9, 0), "Europe/Moscow", "09:00-21:00", utc(2026, 11, 22, 9, 0)),
    # Before it: today's opening, 09:00 MSK = 06:00 UTC.
    (utc(2026, 11, 22, 3, 0), "Europe/Moscow", "09:00-21:00", utc(2026, 11, 22, 6, 0)),
    # After it: tomorrow's opening.
    (utc(2026, 11, 22, 19, 0), "Europe/Moscow", "09:00-21:00", utc(2026, 11, 23, 6, 0)),
    # The end is exclusive: at 21:00 local the window is shut.
    (utc(2026, 11, 22, 18, 0), "Europe/Moscow", "09:00-21:00", utc(2026, 11, 23, 6, 0)),
    # Across midnight: 23:30 and 05:59 local are inside, 06:00 is not.
    (utc(2026, 11, 22, 20, 30), "Europe/Moscow", "22:00-06:00", utc(2026, 11, 22, 20, 30)),
    (utc(2026, 11, 23, 2, 59), "Europe/Moscow", "22:00-06:00", utc(2026, 11, 23, 2, 59)),
    (utc(2026, 11, 23, 3, 0), "Europe/Moscow", "22:00-06:00", utc(2026, 11, 23, 19, 0)),
    # DST starts in New York on 2027-03-14: 09:00 EDT is 13:00 UTC, not 14:00.
    (utc(2027, 3, 14, 6, 0), "America/New_York", "09:00-17:00", utc(2027, 3, 14, 13, 0)),
    # DST ends on 2027-11-07: 09:00 EST is 14:00 UTC.
    (utc(2027, 11, 7, 5, 0), "America/New_York", "09:00-17:00", utc(2027, 11, 7, 14, 0)),
    # Berlin jumps 02:00 -> 03:00 on 2027-03-28: a window opening at the skipped 02:30 opens at the jump.
    (utc(2027, 3, 28, 0, 10), "Europe/Berlin", "02:30-04:00", utc(2027, 3, 28, 1, 0)),
    # Berlin repeats 02:00-03:00 on 2027-10-31: the first 02:30 (CEST) counts.
    (utc(2027, 10, 31, 0, 10), "Europe/Berlin", "02:30-04:00", utc(2027, 10, 31, 0, 30)),
    # UTC+14: at 23:00 UTC it is already 13:00 tomorrow there, so the next 09:00 is the day after.
    (utc(2026, 11, 22, 23, 0), "Pacific/Kiritimati", "09:00-10:00", utc(2026, 11, 23, 19, 0)),
])
def test_next_window_open(now, tz, window, expected):
    assert windows.next_window_open(now, tz, W(window)) == expected


def zone_with_local_hour(hour, now=None):
    """A fixed-offset IANA zone (Etc/GMT±N) whose local hour is `hour` now."""
    now = now or dt.datetime.now(UTC)
    offset = (hour - now.hour) % 24
    if offset > 14:
        offset -= 24
    name = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    assert now.astimezone(zoneinfo.ZoneInfo(name)).hour == hour
    return name


def test_window_across_midnight_with_a_real_consumer(world, simulator):
    if dt.datetime.now(UTC).minute == 59 and dt.datetime.now(UTC).second > 45:
        time.sleep(20)  # keep the chosen local hours from turning over mid-test
    sim = simulator()
    world.use_gateway(sim)
    night, noon = zone_with_local_hour(23), zone_with_local_hour(12)
    world.mailer("clients", "add", "--phone", "79000000001", "--tz", night)
    world.mailer("clients", "add", "--phone", "79000000002", "--tz", noon)
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "night", "--start", "now", "--end", "+1d",
                                "--window", "22:00-06:00")
    wait_for(lambda: len(read_log(sim.log_path)) == 1, message="the night-time client's send")
    assert read_log(sim.log_path)[0]["phone"] == 79000000001
    opens = windows.next_window_open(times.utcnow(), noon, W("22:00-06:00"))
    waiting = wait_for(lambda: world.query("SELECT status, next_attempt_at FROM message "
                                           "WHERE phone = '79000000002' AND next_attempt_at > ?",
                                           str(times.utcnow()))[:1], message="the deferral")[0]
    assert waiting[0] == "pending" and dt.datetime.fromisoformat(waiting[1]) == opens
    # Cut the mailing short: at its new end the client still outside its window expires, never sent.
    world.mailer("mailings", "edit", mailing["id"], "--end", "+2s")
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 1, "expired": 1}, timeout=15,
             message="the closed-window client to expire")
    assert len(read_log(sim.log_path)) == 1
    assert world.mailer_json("stats", mailing["id"])["state"] == "finished"


def test_window_that_opens_after_the_end_expires_at_once(world, simulator):
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000002", "--tz", zone_with_local_hour(12))
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+1h",
                                "--window", "22:00-06:00")
    wait_for(lambda: world.statuses(mailing["id"]) == {"expired": 1}, message="expiry")
    error = world.query("SELECT last_error FROM message")[0][0]
    assert "window opens after the mailing ends" in error
    assert read_log(sim.log_path) == []


def faketime_env(shift_seconds):
    """Environment that shifts a process's clock by libfaketime (Debian package faketime)."""
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not libs:
        if os.environ.get("CI"):
            pytest.fail("libfaketime is missing: .ci/run installs the faketime package")
        pytest.skip("libfaketime (Debian package faketime) is not installed")
    return {"LD_PRELOAD": libs[0], "FAKETIME": f"{shift_seconds:+.0f}", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_window_across_a_dst_change_with_a_real_consumer(world, simulator):
    # The consumer and the command line live 15 s before Berlin jumps from 02:00 CET to 03:00 CEST
    # (2027-03-28 01:00 UTC). A window opening at 03:00 local opens at 01:00 UTC; an engine that kept
    # the winter offset would wait until 02:00 UTC.
    jump = dt.datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    shift = round((jump - dt.timedelta(seconds=15)).timestamp() - time.time())  # whole seconds, as faketime takes it
    world.env.update(faketime_env(shift))
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000001", "--tz", "Europe/Berlin")
    world.mailer("clients", "add", "--phone", "79000000002", "--tz", "Asia/Yekaterinburg")  # no DST
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "spring", "--start", "now", "--end", "+1d",
                                "--window", "03:00-05:00")
    # In Yekaterinburg (UTC+5, no DST) it is 05:59: its window opens at 03:00 tomorrow, 22:00 UTC.
    wait_for(lambda: world.query("SELECT count(*) FROM message WHERE next_attempt_at > ?",
                                 "2027-03-28 00:59:59")[0][0] == 2, message="both deferred")
    rows = dict(world.query("SELECT phone, next_attempt_at FROM message"))
    assert dt.datetime.fromisoformat(rows["79000000001"]) == jump.replace(tzinfo=None)
    assert dt.datetime.fromisoformat(rows["79000000002"]) == dt.datetime(2027, 3, 28, 22, 0)
    wait_for(lambda: read_log(sim.log_path), timeout=30, message="the Berlin send after the jump")
    sent = read_log(sim.log_path)
    assert [e["phone"] for e in sent] == [79000000001]
    fake_received = sent[0]["received_at"] + shift
    # At the jump, not an hour later (the winter offset kept): how soon after a message falls due it
    # goes is bench/start_latency.py's figure, not this test's.
    assert jump.timestamp() <= fake_received < jump.timestamp() + 60
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 1, "pending": 1}, message="sent recorded")


def test_quiet_hours_and_weekdays_across_a_dst_change_with_a_real_consumer(world, simulator):
    """Issue 12, part 5: 15 s before Berlin's clocks jump (Sunday 2027-03-28, 02:00 CET -> 03:00
    CEST, 01:00 UTC). Quiet hours by default (MAILER_DEFAULT_WINDOW=03:00-05:00) on Sundays go at the
    jump; the same hours on Monday to Saturday skip the Sunday and open on Monday at 03:00 CEST."""
    jump = dt.datetime(2027, 3, 28, 1, 0, tzinfo=UTC)
    shift = round((jump - dt.timedelta(seconds=15)).timestamp() - time.time())
    world.env.update(faketime_env(shift))
    world.env["MAILER_DEFAULT_WINDOW"] = "03:00-05:00"
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000001", "--tz", "Europe/Berlin", "--tag", "sunday")
    world.mailer("clients", "add", "--phone", "79000000002", "--tz", "Europe/Berlin", "--tag", "weekdays")
    world.start_consumer()
    sunday = world.mailer_json("mailings", "create", "--text", "sunday", "--start", "now", "--end", "+3d",
                               "--tag", "sunday", "--days", "sun")
    weekdays = world.mailer_json("mailings", "create", "--text", "weekdays", "--start", "now",
                                 "--end", "+3d", "--tag", "weekdays", "--days", "mon-sat")
    assert sunday["window"] == weekdays["window"] == "03:00-05:00"
    wait_for(lambda: read_log(sim.log_path), timeout=40, message="the Sunday send after the jump")
    sent = read_log(sim.log_path)
    assert [e["phone"] for e in sent] == [79000000001]
    assert jump.timestamp() <= sent[0]["received_at"] + shift < jump.timestamp() + 60
    # Monday 03:00 CEST is 01:00 UTC: a week's arithmetic that kept the winter offset says 02:00.
    monday = dt.datetime(2027, 3, 29, 1, 0)
    wait_for(lambda: world.query("SELECT next_attempt_at FROM message WHERE mailing_id = ? AND status = 'pending' "
                                 "AND next_attempt_at > ?", weekdays["id"], "2027-03-28 12:00")[0:1],
             message="the weekday message deferred")
    deferred = world.query("SELECT next_attempt_at FROM message WHERE mailing_id = ?", weekdays["id"])[0][0]
    assert dt.datetime.fromisoformat(deferred) == monday
    wait_for(lambda: world.statuses(sunday["id"]) == {"sent": 1}, message="the Sunday send recorded")
    assert world.statuses(weekdays["id"]) == {"pending": 1}
    assert [e["phone"] for e in read_log(sim.log_path)] == [79000000001]


def test_quiet_hours_by_default_and_any_time_when_said(world, simulator):
    """MAILER_DEFAULT_WINDOW (issue 12, part 5): a mailing that names no window gets it, in each
    client's local time, from a real consumer's point of view; `--window any` sends at any hour."""
    if dt.datetime.now(UTC).minute == 59 and dt.datetime.now(UTC).second > 45:
        time.sleep(20)  # keep the chosen local hours from turning over mid-test
    sim = simulator()
    world.use_gateway(sim)
    world.env["MAILER_DEFAULT_WINDOW"] = "09:00-21:00"
    night, noon = zone_with_local_hour(3), zone_with_local_hour(12)
    world.mailer("clients", "add", "--phone", "79000000001", "--tz", night)
    world.mailer("clients", "add", "--phone", "79000000002", "--tz", noon)
    world.start_consumer()
    quiet = world.mailer_json("mailings", "create", "--text", "quiet", "--start", "now", "--end", "+1d")
    assert quiet["window"] == "09:00-21:00"
    wait_for(lambda: [e["phone"] for e in read_log(sim.log_path)] == [79000000002],
             message="the noon client's send")
    opens = windows.next_window_open(times.utcnow(), night, W("09:00-21:00"))
    waiting = wait_for(lambda: world.query("SELECT status, next_attempt_at FROM message WHERE mailing_id = ? "
                                           "AND phone = '79000000001' AND next_attempt_at > ?",
                                           quiet["id"], str(times.utcnow()))[:1], message="the deferral")[0]
    assert waiting[0] == "pending" and dt.datetime.fromisoformat(waiting[1]) == opens
    anytime = world.mailer_json("mailings", "create", "--text", "now", "--start", "now", "--end", "+1d",
                                "--window", "any")
    assert anytime["window"] is None
    wait_for(lambda: world.statuses(anytime["id"]) == {"sent": 2}, message="both sent at any hour")
    assert sorted(e["phone"] for e in read_log(sim.log_path) if e["text"] == "now") == [79000000001, 79000000002]
    world.env["MAILER_DEFAULT_WINDOW"] = "9-21"
    refused = world.mailer("mailings", "list", check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("error: MAILER_DEFAULT_WINDOW: must look like")


def test_weekdays_hold_with_a_real_consumer(world, simulator):
    """`--days` (issue 12, part 5): a mailing sends only on the weekdays it names, in each client's
    local time; on another day its message waits for the next named day's local midnight."""
    zone = "Europe/Moscow"
    local = dt.datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(zone))
    if local.hour == 23 and local.minute >= 59:
        time.sleep(70)  # keep today from turning over mid-test
        local = dt.datetime.now(UTC).astimezone(zoneinfo.ZoneInfo(zone))
    today, tomorrow = (windows.DAY_NAMES[(local.weekday() + k) % 7] for k in (0, 1))
    sim = simulator()
    world.use_gateway(sim)
    world.mailer("clients", "add", "--phone", "79000000001", "--tz", zone)
    world.start_consumer()
    later = world.mailer_json("mailings", "create", "--text", "tomorrow", "--start", "now", "--end", "+3d",
                              "--days", tomorrow)
    now = world.mailer_json("mailings", "create", "--text", "today", "--start", "now", "--end", "+3d",
                            "--days", today)
    assert (later["days"], now["days"]) == (tomorrow, today)
    wait_for(lambda: world.statuses(now["id"]) == {"sent": 1}, message="today's mailing sent")
    opens = windows.next_window_open(times.utcnow(), zone, None, windows.parse_days(tomorrow))
    waiting = wait_for(lambda: world.query("SELECT status, next_attempt_at FROM message WHERE mailing_id = ? "
                                           "AND next_attempt_at > ?", later["id"], str(times.utcnow())),
                       message="tomorrow's mailing deferred")[0]
    assert waiting[0] == "pending" and dt.datetime.fromisoformat(waiting[1]) == opens
    assert opens.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(zone)).strftime("%a %H:%M").lower() == \
        f"{tomorrow} 00:00"
    assert [e["text"] for e in read_log(sim.log_path)] == ["today"]
    refused = world.mailer("mailings", "create", "--text", "x", "--start", "now", "--end", "+1h", "--days", "someday",
                           check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("error: days: must be days such as mon-fri")
