"""The one state machine of mailings and messages.

A mailing: scheduled -> running (its start came: the audience is materialized) <-> paused (by the
operator, or by itself when its attempts mostly fail) -> finished (its end came) or cancelled.
A mailing that never started may be deleted (with its messages: it has none); one that started is
archived instead (`delete_mailing`): hidden from lists, its messages and journal kept.
A message: pending -> sent | failed | expired | cancelled | unknown (in doubt). A pending message that
will not be sent (the end came, the mailing or its client went) is closed here, in one place: never
while it is on the wire, and as `unknown` where an earlier attempt may have reached the gateway.
The delivery policy (what an answer makes of a message) is `domain.delivery`.
"""
from typing import NamedTuple

import peewee as pw

from domain import counts
from domain.audit import event
from domain.mailings import get_mailing, locked_mailings, materialize
from domain.spread import spread_pending
from domain.times import utcnow
from domain.validation import ValidationError
from domain.vocabulary import (CANCELLED, EXPIRED, FAILED, FINISHED, LIVE_STATES, PAUSED, PENDING,
                               RUNNING, SCHEDULED, SENDING_STATES, UNKNOWN)
from models import GATEWAY, Attempt, GatewayStatus, Mailing, Message, OptOut, TestSend, db, db_now

# action -> (the states it may leave, the state it enters)
MAILING_TRANSITIONS = {
    "start": ((SCHEDULED,), RUNNING),
    "pause": ((RUNNING,), PAUSED),
    "resume": ((PAUSED,), RUNNING),
    "cancel": (LIVE_STATES, CANCELLED),
    "finish": (LIVE_STATES, FINISHED),
}
OPERATOR_ACTIONS = ("pause", "resume", "cancel")


def _move(mailing_id, action, now, **columns):
    """Apply a transition if the mailing is still in a state it may leave; whether it moved."""
    sources, target = MAILING_TRANSITIONS[action]
    return bool(Mailing.update(state=target, updated_at=now, **columns)
                .where((Mailing.id == mailing_id) & Mailing.state.in_(sources)).execute())


# ---------------------------------------------------------------------------------------------------
# Messages


def unsent_status(status):
    """The final status of a message that will not be sent again: `status` (expired, cancelled), or
    `unknown` where an earlier attempt may have reached the gateway."""
    return pw.Case(None, ((Message.in_doubt == True, UNKNOWN),), status)  # noqa: E712


def close_unsent(cond, status, reason):
    """Pending messages matching `cond` that are not on the wire will not be sent: they become
    `status` (`unknown` if in doubt) and their leases go. Returns how many."""
    return (Message.update(status=unsent_status(status), last_error=reason, lease_owner=None,
                           lease_until=None)
            .where(cond & (Message.status == PENDING) & Message.sending_since.is_null())
            .execute())


def hold_in_doubt(cond, reason):
    """Messages on the wire (matching `cond`) whose answer will not come in time: `unknown`, final.
    Their lease stays, so a late answer from a consumer that was only frozen still settles them."""
    return (Message.update(status=UNKNOWN, in_doubt=True, last_error=reason)
            .where(cond & (Message.status == PENDING) & Message.sending_since.is_null(False)).execute())


def send_again_in_doubt(cond, reason, now):
    """Messages on the wire (matching `cond`) whose answer will not come, handed back to be sent
    again with the same msgId (MAILER_IN_DOUBT=retry: the gateway de-duplicates)."""
    return (Message.update(in_doubt=True, sending_since=None, lease_owner=None, lease_until=None,
                           next_attempt_at=now, last_error=reason)
            .where(cond & (Message.status == PENDING) & Message.sending_since.is_null(False)).execute())


class Resend(NamedTuple):
    """What an operator's resend of the messages in doubt did: how many go again, and how many stay
    in doubt because their phone opted out meanwhile (never posted again)."""
    resent: int
    opted_out: int

    def describe(self):
        said = f"{self.resent} message(s) in doubt will be sent again with the same msgId"
        if self.opted_out:
            said += f"; {self.opted_out} stay in doubt: their phones are on the stop list"
        return said


def resend_in_doubt(mailing_id, now=None):
    """Put a mailing's in-doubt (`unknown`) messages back to be sent, with the same msgId: the
    operator's call, since each may already have reached the phone. Only while the mailing can
    still send, and never to a phone on the stop list; returns a Resend."""
    now = now or utcnow()
    with db.atomic():
        mailing = get_mailing(mailing_id, lock=True)
        if mailing.state not in SENDING_STATES or mailing.end_at <= now:
            raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}"
                                            + (" and has ended" if mailing.end_at <= now else "")
                                            + "; only a running or paused mailing can resend"})
        in_doubt = (Message.mailing == mailing_id) & (Message.status == UNKNOWN)
        opted_out = Message.phone.in_(OptOut.select(OptOut.phone))
        resent = (Message.update(status=PENDING, next_attempt_at=now, lease_owner=None, lease_until=None,
                                 sending_since=None, last_error="resent by the operator after an "
                                                                "attempt in doubt")
                  .where(in_doubt & ~opted_out).execute())
        return Resend(resent, Message.select().where(in_doubt & opted_out).count())


# ---------------------------------------------------------------------------------------------------
# Mailings


def start_if_due(mailing_id, now=None):
    """Materialize the audience of a scheduled mailing whose start has come. Idempotent."""
    now = now or db_now()
    with db.atomic():
        mailing = locked_mailings(Mailing.id == mailing_id).first()
        if mailing is None or mailing.state != SCHEDULED or mailing.start_at > now:  # None: deleted
            return False
        if mailing.end_at <= now:
            _move(mailing_id, "finish", now, state_reason="ended before it could start")
            return False
        materialize(mailing, now)
        _move(mailing_id, "start", now, started_at=now)
    return True


def finish_if_ended(mailing_id, now=None):
    """At the end, whatever is unsent and not on the wire expires and the mailing finishes."""
    now = now or db_now()
    with db.atomic():
        mailing = locked_mailings(Mailing.id == mailing_id).first()
        if mailing is None or mailing.state not in LIVE_STATES or mailing.end_at > now:
            return False
        close_unsent(Message.mailing == mailing_id, EXPIRED, "mailing ended before it was sent")
        _move(mailing_id, "finish", now)
    return True


def set_state(mailing_id, action, reason=""):
    """The operator's pause, resume or cancel. A spread mailing resumed spreads what it has not sent
    over what is left of its time (its window's, per zone) from now."""
    if action not in OPERATOR_ACTIONS:
        raise ValidationError({"action": f"must be one of {', '.join(OPERATOR_ACTIONS)}; got {action!r}"})
    sources, _ = MAILING_TRANSITIONS[action]
    now = utcnow()
    with db.atomic():
        mailing = get_mailing(mailing_id, lock=True)
        if mailing.state not in sources:
            raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}; cannot {action} it"})
        _move(mailing_id, action, now, state_reason=reason)
        if action == "cancel":
            close_unsent(Message.mailing == mailing_id, CANCELLED, "mailing cancelled")
        if action == "resume" and mailing.spread and mailing.end_at > now:
            spread_pending(mailing, now)
    return get_mailing(mailing_id)


class Deleted(NamedTuple):
    """What deleting a mailing did: `deleted` (it never started nor sent a test: its row is gone) or
    `archived` (it had started, or sent tests: hidden from lists, its messages, test sends and
    journal kept)."""
    mailing_id: int
    outcome: str
    messages: int = 0
    tests: int = 0  # test sends of a mailing that never started, kept

    def describe(self):
        if self.outcome == "deleted":
            return f"mailing {self.mailing_id} deleted (it never started)"
        if self.tests and not self.messages:
            return (f"mailing {self.mailing_id} archived, not deleted: its {self.tests} test send(s) went to "
                    f"the gateway and stay on record (hidden from lists; --archived shows it)")
        return (f"mailing {self.mailing_id} archived: hidden from lists (--archived shows it), its "
                f"{self.messages} message(s) and their journal kept for statistics and reports")


def delete_mailing(mailing_id, now=None):
    """The operator's delete. A mailing that never started and sent no test goes (with its messages:
    it has none); one that started, or sent tests, is archived: hidden from lists, its messages, test
    sends and journal kept. What reached the gateway stays on record, and its row keeps its id, so
    a later mailing cannot take it (SQLite gives a deleted highest id again) and with it a test
    send's msgId (TestSend.msg_id) that the gateway has already seen. A running or paused one is
    refused: it may have messages on the wire, and cancelling it first says what becomes of its
    unsent ones."""
    now = now or utcnow()
    with db.atomic():
        mailing = get_mailing(mailing_id, lock=True)
        if mailing.state in SENDING_STATES:
            raise ValidationError({"state": f"mailing {mailing.id} is {mailing.state}; cancel it first"})
        tests = TestSend.select().where(TestSend.mailing_id == mailing.id).count()
        if mailing.started_at is None and not tests:
            Mailing.delete().where(Mailing.id == mailing.id).execute()  # its messages: ON DELETE CASCADE
            return Deleted(mailing.id, "deleted")
        if mailing.archived_at is not None:
            raise ValidationError({"id": f"mailing {mailing.id} is archived already"})
        Mailing.update(archived_at=now).where(Mailing.id == mailing.id).execute()
        messages = counts.status_counts([mailing.id]).get(mailing.id, {})
        return Deleted(mailing.id, "archived", sum(messages.values()), tests)


def pause_if_failing(mailing_id, settings):
    """Pause a mailing whose recent attempts mostly failed for good (the gateway refuses its text or
    its numbers): retrying the rest would only burn them. Counted since its last change (a resume)."""
    since = Mailing.select(Mailing.updated_at).where(Mailing.id == mailing_id)
    recent = (Attempt.select(Attempt.outcome, Attempt.error)
              .where((Attempt.mailing_id == mailing_id) & (Attempt.at >= since))
              .order_by(Attempt.id.desc()).limit(settings.fail_pause_window))
    outcomes = list(recent.tuples())
    failed = [error for outcome, error in outcomes if outcome == FAILED]
    if len(failed) < settings.fail_pause_min or len(failed) < settings.fail_pause_ratio * len(outcomes):
        return False
    reason = (f"paused automatically: {len(failed)} of its last {len(outcomes)} attempts failed "
              f"for good (last: {failed[0][:120]})")
    if not _move(mailing_id, "pause", utcnow(), state_reason=reason):
        return False
    event("mailing paused automatically", mailing_id=mailing_id, state=PAUSED, reason=reason)
    return True


# ---------------------------------------------------------------------------------------------------
# The gateway pause: sending stops for every mailing (the gateway refused the token, or redirected)


def gateway_pause(now=None):
    """(paused_until, reason) while sending is paused for everyone, else None."""
    now = now or utcnow()
    row = GatewayStatus.get_or_none(GatewayStatus.name == GATEWAY)
    if row is None or row.paused_until is None or row.paused_until <= now:
        return None
    return row.paused_until, row.reason


def set_gateway_pause(until, reason=""):
    (GatewayStatus.insert(name=GATEWAY, paused_until=until, reason=reason, updated_at=utcnow())
     .on_conflict(conflict_target=[GatewayStatus.name],
                  update={GatewayStatus.paused_until: until, GatewayStatus.reason: reason,
                          GatewayStatus.updated_at: utcnow()})
     .execute())


def due_mailings(now=None):
    """Ids of mailings to start and to finish now (what the minute's sweep repairs)."""
    now = now or db_now()
    to_start = [i for (i,) in Mailing.select(Mailing.id).where(
        (Mailing.state == SCHEDULED) & (Mailing.start_at <= now)).tuples()]
    to_finish = [i for (i,) in Mailing.select(Mailing.id).where(
        Mailing.state.in_(LIVE_STATES) & (Mailing.end_at <= now)).tuples()]
    return to_start, to_finish
