"""Every change an operator makes, through the command line, the console or the HTTP API (api/): the
only writer of clients and mailings. Each operation applies the domain's rule, writes its audit
event, and tells the waker, which the process that runs the service injects (`use_waker`): the
command line and the console get a queue waker from `tasks`, so nothing here imports huey.
"""
import os

from domain import api_tokens, client_import, clients, mailings, opt_outs, states, test_sends
from domain.audit import event
from domain.validation import ValidationError
from domain.vocabulary import RUNNING
from models import Mailing


class NoWaker:
    """Tells nobody: consumers still find due work within a second and due starts and ends at the
    minute's sweep."""

    def mailing_changed(self, mailing):
        pass

    def work_due(self):
        pass


_waker = NoWaker()


def _no_sender(msg_id, phone, text):
    raise ValidationError({"gateway": "this process has no gateway to send a test through"})


_sender = _no_sender


def use_sender(send):
    """Install what sends a test message now: send(msg_id, phone, text) -> a verdict (app.py gives the
    engine's gateway client; the service imports none)."""
    global _sender
    previous, _sender = _sender, send
    return previous


def use_waker(waker):
    """Install what tells the consumers about changes (tasks.QueueWaker); returns the previous one."""
    global _waker
    previous, _waker = _waker, waker
    return previous


def _changed(mailing):
    _waker.mailing_changed(mailing)


def _work_if_running():
    if Mailing.select().where(Mailing.state == RUNNING).exists():
        _waker.work_due()


# ---------------------------------------------------------------------------------------------------
# Mailings


def create_mailing(**fields):
    mailing = mailings.create_mailing(**fields)
    states.start_if_due(mailing.id)
    mailing = mailings.get_mailing(mailing.id)
    _changed(mailing)
    event("mailing created", mailing_id=mailing.id, state=mailing.state, start=str(mailing.start_at),
          end=str(mailing.end_at), operator=mailing.operator, tag=mailing.tag, window=mailing.window)
    return mailing


def edit_mailing(mailing_id, **fields):
    mailings.edit_mailing(mailing_id, **fields)
    states.start_if_due(mailing_id)
    mailing = mailings.get_mailing(mailing_id)
    _changed(mailing)
    event("mailing edited", mailing_id=mailing.id, changed=sorted(k for k, v in fields.items() if v is not None))
    return mailing


def clone_mailing(source_id, only=None, confirm_parts=False, **fields):
    """A new mailing from mailing `source_id` (mailings.clone_fields: its fields, those given instead);
    with `only` (statuses), a resend to the clients of its messages in those statuses."""
    cloned = mailings.clone_fields(source_id, **fields)
    mailing = create_mailing(**cloned, only=only, confirm_parts=confirm_parts)
    event("mailing cloned", mailing_id=mailing.id, source_id=source_id, only=mailing.source_statuses)
    return mailing


def delete_mailing(mailing_id):
    """Delete a mailing that never started, archive one that did (states.delete_mailing)."""
    done = states.delete_mailing(mailing_id)  # its start task, if queued, finds no mailing: nothing
    event(f"mailing {done.outcome}", mailing_id=mailing_id, messages=done.messages)
    return done


def set_mailing_state(mailing_id, action, reason=""):
    """pause, resume or cancel."""
    mailing = states.set_state(mailing_id, action, reason)
    if mailing.state == RUNNING:
        _waker.work_due()
    event(f"mailing {action}", mailing_id=mailing.id, state=mailing.state, reason=reason or None)
    return mailing


def resend_in_doubt(mailing_id):
    done = states.resend_in_doubt(mailing_id)
    if done.resent:
        _work_if_running()
    event("mailing resend in doubt", mailing_id=mailing_id, resent=done.resent, opted_out=done.opted_out)
    return done


# ---------------------------------------------------------------------------------------------------
# Clients


def create_client(**fields):
    client = clients.create_client(**fields)
    _work_if_running()
    event("client added", client_id=client.id, operator=client.operator, tag=client.tag, tz=client.tz)
    return client


def edit_client(client_id, **fields):
    client = clients.edit_client(client_id, **fields)
    _work_if_running()
    event("client edited", client_id=client.id, changed=sorted(k for k, v in fields.items() if v is not None))
    return client


def import_clients(source, all_or_nothing=False):
    report = client_import.import_clients(source, all_or_nothing)
    if report.imported:
        _work_if_running()
    event("clients imported", imported=report.imported, rejected=len(report.rejected), total=report.total,
          source=str(source) if isinstance(source, (str, os.PathLike)) else None)
    return report


def delete_clients(ids):
    ids = list(ids)
    count = clients.delete_clients(ids)
    for client_id in ids:
        event("client deleted", client_id=client_id)
    return count


# ---------------------------------------------------------------------------------------------------
# The stop list


def opt_out(phones, source="cli", reason=""):
    """Put phones on the stop list; their pending messages are suppressed when their turn comes."""
    added = opt_outs.add(phones, source, reason)
    event("phones opted out", added=added, given=len(phones), source=source)
    return added


def opt_in(phones):
    """Take phones off the stop list."""
    removed = opt_outs.remove(phones)
    event("phones taken off the stop list", removed=removed, given=len(phones))
    return removed


def import_opt_outs(source, reason=""):
    report = opt_outs.import_opt_outs(source, reason)
    event("stop list imported", added=report.imported, rejected=len(report.rejected), total=report.total,
          source=str(source) if isinstance(source, (str, os.PathLike)) else None)
    return report



# ---------------------------------------------------------------------------------------------------
# Test sends


def send_test(mailing_id, phones=None):
    """The mailing's text to these numbers (default MAILER_TEST_PHONES) now, through the gateway;
    recorded apart from its messages. -> the TestSend rows with the gateway's answers."""
    rows = test_sends.send_test(mailing_id, phones, lambda *message: _sender(*message))
    event("test sent", mailing_id=mailing_id, numbers=len(rows),
          outcomes=sorted({r.outcome for r in rows}))
    return rows


# ---------------------------------------------------------------------------------------------------
# HTTP API tokens


def create_api_token(scope, name=""):
    """-> (its row, the token): the token is shown once by the caller and stored nowhere."""
    row, token = api_tokens.create_token(scope, name)
    event("api token created", token_id=row.id, scope=row.scope, name=row.name or None)
    return row, token


def revoke_api_token(token_id):
    row = api_tokens.revoke(token_id)
    event("api token revoked", token_id=row.id, scope=row.scope)
    return row


def api_token_used(row):
    api_tokens.note_used(row)
