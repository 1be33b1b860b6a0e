"""The caps' reads on both backends (issue 12, part 4): the audience by operator with its opted-out
phones, the dashboard's expected finish (the minute's sends grouped by mailing, a spread mailing's
last due message) and the caps consumers apply by the database's clock. PostgreSQL is stricter
about a GROUP BY than SQLite."""
import dataclasses
import datetime as dt
import io

import pytest

import models
import service
from domain import mailings, settings, stats
from domain.times import utcnow
from models import Attempt, Mailing, Message, RateBucket

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]


def test_the_caps_figures_and_the_expected_finish_read_alike_on_both_backends(backend):
    rows = "".join(f"790000000{i},900,a,Europe/Moscow\n" for i in range(10, 40))
    rows += "".join(f"791600000{i},916,b,Europe/Moscow\n" for i in range(10, 20))
    assert service.import_clients(io.StringIO("phone,operator,tag,tz\n" + rows)).imported == 40
    service.opt_out(["79000000010"])
    settings.use(dataclasses.replace(settings.current(), rate=None, rate_operators={"900": 0.02}))
    assert mailings.audience_by_operator() == {"900": 29, "916": 10}
    row, estimate, opted_out, short = mailings.preview_mailing("hi", "now", "+10m")
    assert (estimate.recipients, opted_out) == (39, 1)
    assert (short.operator, short.capped, short.missed) == ("900", 29, 17)

    settings.use(dataclasses.replace(settings.current(), rate=50.0, rate_operators={}))
    mailing = service.create_mailing(text="hi", start="now", end="+1h", tag="a")
    spread = service.create_mailing(text="spread", start="now", end="+1h", tag="b")
    assert {Mailing.get_by_id(m.id).state for m in (mailing, spread)} == {"running"}
    now = utcnow()
    Mailing.update(started_at=now - dt.timedelta(minutes=5)).execute()
    Mailing.update(spread=True).where(Mailing.id == spread.id).execute()
    sent = [m.id for m in Message.select().where(Message.mailing == mailing.id).order_by(Message.id).limit(9)]
    Message.update(status="sent").where(Message.id.in_(sent)).execute()
    Attempt.insert_many([{"message": i, "mailing_id": mailing.id, "at": now - dt.timedelta(seconds=k),
                          "outcome": "sent"} for k, i in enumerate(sent)]).execute()
    last = now + dt.timedelta(minutes=30)
    Message.update(next_attempt_at=last).where(Message.mailing == spread.id).execute()
    RateBucket.create(key="all", tokens=1, at=models.shared_seconds(),
                      rate=30, unit="messages")
    RateBucket.create(key="operator 916", tokens=1, at=models.shared_seconds() - 3600, rate=1, unit="messages")

    snap = stats.dashboard()
    finish = {r.id: r.finish for r in snap.live}
    # 9 sent over the minute (0.15/s): its 20 pending in 133 s
    assert finish[mailing.id].missed == 0 and 130 < finish[mailing.id].seconds < 136
    assert abs((finish[spread.id].spread_until - last).total_seconds()) < 1e-3
    assert [(a.key, a.rate, a.ours) for a in snap.applied] == [("all", 30, 50.0)]
    assert snap.caps.describe() == "50 messages/s in all"
