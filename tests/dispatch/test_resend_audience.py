"""A resend's audience and a mailing's delete, on SQLite and PostgreSQL (migration 0011): the
clients of the original's messages in the statuses named, at their current phone, without deleted
or opted-out ones, spread when the clone spreads; a never-started mailing deleted with its messages'
cascade, a started one archived and left out of the lists but not of the statistics. Read from the
database; tests/test_clone_delete.py sends through a consumer and the simulator."""
import io

import pytest

import service
from domain import stats
from domain.vocabulary import FAILED, SENT, UNKNOWN
from models import Attempt, Client, Mailing, Message

pytestmark = [pytest.mark.engine, pytest.mark.xdist_group("engine")]


def add_clients(n, first=79000000000):
    rows = "".join(f"{first + i},900,t,Europe/Moscow\n" for i in range(n))
    assert service.import_clients(io.StringIO("phone,operator,tag,tz\n" + rows)).imported == n


def test_a_resend_reaches_the_clients_of_the_messages_named_and_no_one_else(backend):
    add_clients(6)
    source = service.create_mailing(text="x", start="now", end="+1h", window="any")
    phones = [m.phone for m in Message.select().where(Message.mailing == source.id).order_by(Message.id)]
    for phone, status in zip(phones, (SENT, FAILED, FAILED, FAILED, UNKNOWN, FAILED)):
        Message.update(status=status).where((Message.mailing == source.id) & (Message.phone == phone)).execute()
    service.opt_out([phones[1]])
    service.delete_clients([Client.get(Client.phone == phones[2]).id])
    moved = Client.get(Client.phone == phones[3])
    service.edit_client(moved.id, phone="79009999999")  # reached at its phone now
    service.set_mailing_state(source.id, "cancel")

    resend = service.clone_mailing(source.id, only="failed", start="+1h", end="+2h", spread=True)
    assert stats.mailing_row(resend.id).total == 2  # scheduled: the audience it would have now
    assert stats.mailing_as_dict(Mailing.get_by_id(resend.id))["only"] == ["failed"]
    service.edit_mailing(resend.id, start="now")
    rows = list(Message.select().where(Message.mailing == resend.id).order_by(Message.phone))
    assert [m.phone for m in rows] == sorted([phones[5], "79009999999"])
    assert all(m.next_attempt_at is not None for m in rows)
    both = service.clone_mailing(source.id, only="failed,unknown")
    assert Message.select().where(Message.mailing == both.id).count() == 3


def test_a_resend_inheriting_a_frequency_cap_does_not_count_its_originals_messages(backend):
    """A resend of messages in doubt, its original capped to one message a day: the original's own
    attempts are what it sends again, not a recent message from another campaign."""
    add_clients(3)
    source = service.create_mailing(text="x", start="now", end="+1h", window="any", skip_recent="24h")
    other = service.create_mailing(text="y", start="+1h", end="+2h", window="any")
    messages = list(Message.select().where(Message.mailing == source.id).order_by(Message.phone))
    for message in messages:
        Message.update(status=UNKNOWN).where(Message.id == message.id).execute()
        Attempt.create(message=message.id, mailing_id=source.id, client_id=message.client_id, outcome=UNKNOWN)
    # The third client got another campaign's message an hour ago: the cap still leaves it out.
    Attempt.create(message=messages[2].id, mailing_id=other.id, client_id=messages[2].client_id, outcome=SENT)
    service.set_mailing_state(source.id, "cancel")
    resend = service.clone_mailing(source.id, only="unknown")
    assert stats.mailing_as_dict(Mailing.get_by_id(resend.id))["filter"]["skip_recent"] == "24h"
    reached = [m.phone for m in Message.select().where(Message.mailing == resend.id).order_by(Message.phone)]
    assert reached == [messages[0].phone, messages[1].phone]


def test_delete_goes_or_archives_and_the_lists_leave_archived_out(backend):
    add_clients(2)
    later = service.create_mailing(text="later", start="+1h", end="+2h")
    went = service.create_mailing(text="went", start="now", end="+1h")
    assert service.delete_mailing(later.id).outcome == "deleted"
    assert Mailing.get_or_none(Mailing.id == later.id) is None
    service.set_mailing_state(went.id, "cancel")
    assert service.delete_mailing(went.id) == service.states.Deleted(went.id, "archived", 2)
    assert stats.mailing_count() == 0 and stats.mailing_count(archived=True) == 1
    assert stats.mailing_stats(went.id)[0]["cancelled"] == 2  # still counted
    assert Message.select().where(Message.mailing == went.id).count() == 2
