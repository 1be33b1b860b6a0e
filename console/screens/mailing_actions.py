"""What the mailings screen and a mailing's detail both do to a mailing, so that both ask the same
questions and refuse the same things."""
from domain.vocabulary import LIVE_STATES
from console.screens.confirm import ConfirmScreen
from console.workers import notify_literal


def cancel_question(mailing_id):
    """The confirmation before cancelling (a ConfirmScreen answering True to cancel)."""
    return ConfirmScreen(f"Cancel mailing {mailing_id}? Its unsent messages will never be sent.",
                         yes_label="Cancel it")


def editable(app, row):
    """Whether the MailingRow `row` may still change; if not, say so."""
    if row.state not in LIVE_STATES:
        notify_literal(app, f"mailing {row.id} is {row.state}; it cannot change", severity="warning")
        return False
    return True
