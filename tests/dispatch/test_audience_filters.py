"""Richer audiences (issue 13, part 1) on SQLite and PostgreSQL: several tags per client, and a
mailing's filter of operators any of, tags any of / all of / none of and a frequency cap. The SQL is
judged by the messages a mailing materializes, the counts the editor and --dry-run show, and the
caps' count by operator; tests/test_audiences.py sends through a consumer and the simulator."""
import datetime as dt
import io

import pytest

import service
from domain import mailings, rates, settings, stats
from domain.audience import Filter
from domain.times import utcnow
from models import Attempt, Client, ClientTag, Mailing, Message

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]

# phone -> (operator, tag, more tags)
CLIENTS = {
    "79000000000": ("900", "vip", "gold;plus"),
    "79160000001": ("916", "new", "gold;plus"),
    "79260000002": ("926", "vip", "gold;plus"),
    "79000000003": ("900", "vip", "gold"),
    "79000000004": ("900", "", "gold;plus"),
    "79160000005": ("916", "vip", "gold;plus;blocked"),
    "79000000006": ("900", "new", "gold;plus"),   # messaged 2 hours ago
    "79000000007": ("900", "", "vip;plus;gold"),  # its first tag from the tags column
    "79000000008": ("900", "", ""),               # no tag: only in filters without tags any/all
}


def load():
    rows = "".join(f"{p},{op},{tag},Europe/Moscow,{more}\n" for p, (op, tag, more) in CLIENTS.items())
    report = service.import_clients(io.StringIO("phone,operator,tag,tz,tags\n" + rows))
    assert report.imported == len(CLIENTS) and not report.rejected
    return {c.phone: c.id for c in Client.select()}


def journal(client_id, outcome, hours_ago):
    """A journal row as a consumer writes it (the frequency cap reads the journal by client)."""
    source = Mailing.select().first() or service.create_mailing(text="before", start="+1d", end="+2d")
    message = Message.create(mailing=source.id, client_id=None, phone="79999999999", status=outcome)
    Attempt.create(message=message.id, mailing_id=source.id, client_id=client_id, outcome=outcome,
                   at=utcnow() - dt.timedelta(hours=hours_ago))


def audience_phones(mailing):
    return sorted(m.phone for m in Message.select().where(Message.mailing == mailing.id))


@pytest.mark.parametrize("flags, expected", [
    ({}, set(CLIENTS)),
    ({"operator": ["900", "916"]}, set(CLIENTS) - {"79260000002"}),
    ({"tag": ["vip", "new"]}, set(CLIENTS) - {"79000000004", "79000000008"}),
    ({"all_tags": "gold,plus"}, set(CLIENTS) - {"79000000003", "79000000008"}),
    ({"not_tags": ["blocked", "new"]}, set(CLIENTS) - {"79160000005", "79160000001", "79000000006"}),
    ({"skip_recent": "24h"}, set(CLIENTS) - {"79000000006"}),
    ({"operator": "900,916", "tag": ["vip", "new"], "all_tags": ["gold,plus"], "not_tags": ["blocked"],
      "skip_recent": "1d"}, {"79000000000", "79160000001", "79000000007"}),
])
def test_a_filter_materializes_exactly_its_clients_and_the_counts_agree(backend, flags, expected):
    ids = load()
    journal(ids["79000000006"], "sent", hours_ago=2)      # messaged lately: left out by the cap
    journal(ids["79000000003"], "sent", hours_ago=30)     # longer ago than 24h
    journal(ids["79000000004"], "failed", hours_ago=1)    # refused: it never reached the phone
    journal(ids["79000000008"], "retry", hours_ago=1)
    service.opt_out(["79000000000"])  # matching, opted out: counted apart, never materialized
    row, estimate, opted_out, _ = mailings.preview_mailing("hi", "now", "+1h", **flags)
    assert (estimate.recipients, opted_out) == (len(expected - {"79000000000"}), int("79000000000" in expected))
    mailing = service.create_mailing(text="hi", start="now", end="+1h", window="any", **flags)
    assert audience_phones(mailing) == sorted(expected - {"79000000000"})
    assert stats.mailing_as_dict(Mailing.get_by_id(mailing.id))["filter"] == Filter.of_mailing(row).as_dict()


def test_tags_follow_edits_deletes_and_a_client_added_while_a_mailing_runs(backend):
    ids = load()
    running = service.create_mailing(text="vip not blocked", start="now", end="+1h", tag="vip", not_tags="blocked")
    before = set(audience_phones(running))
    assert "79000000004" not in before
    service.edit_client(ids["79000000004"], tags="vip; extra")  # now vip: attached to the running mailing
    assert set(audience_phones(running)) == before | {"79000000004"}
    assert stats.client_row(ids["79000000004"]).tags == ("vip", "extra")
    added = service.create_client(phone="79000000099", tag=["blocked", "vip"])  # vip, but blocked
    assert "79000000099" not in audience_phones(running)
    assert Client.get_by_id(added.id).tag == "blocked"
    service.delete_clients([ids["79000000000"], added.id])
    assert not ClientTag.select().where(ClientTag.client_id.in_([ids["79000000000"], added.id])).exists()
    assert mailings.filter_values()[1] == ["blocked", "extra", "gold", "new", "plus", "vip"]


def test_the_caps_count_a_filter_of_several_operators_by_operator(backend):
    load()
    settings.use(settings.current().replace(rate_operators=rates.parse_operator_rates("900=1,916=1")))
    flt = Filter.of(["900", "916"], ["vip", "new"])
    assert mailings.audience_by_operator(flt) == {"900": 4, "916": 2}
    assert mailings.audience_count(flt) == 6
    service.opt_out(["79160000001"])
    assert mailings.audience_by_operator(flt) == {"900": 4, "916": 1}


def test_a_mailing_saved_before_reads_its_operator_and_tag_columns(backend):
    load()
    old = Mailing.create(text="old", start_at=utcnow() + dt.timedelta(hours=1), end_at=utcnow() + dt.timedelta(hours=2),
                         operator="900", tag="vip")  # as migration 0011 left it: no audience column set
    assert old.audience_filter == Filter(("900",), ("vip",))
    assert stats.mailing_row(old.id).total == 3  # 79000000000, 79000000003, 79000000007
    assert stats.mailing_row(old.id).audience == "operator 900, tag vip"
    service.edit_mailing(old.id, not_tags="gold")
    assert Mailing.get_by_id(old.id).audience_filter == Filter(("900",), ("vip",), (), ("gold",))
    assert stats.mailing_row(old.id).total == 0
