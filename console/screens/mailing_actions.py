"""What the mailings screen and a mailing's detail both do to a mailing, so that both ask the same
questions and refuse the same things."""
import service
from domain import validation
from domain.vocabulary import LIVE_STATES, SENDING_STATES
from console.read_only import writes
from console.screens.confirm import ConfirmScreen
from console.workers import db_work, deliver, notify_literal


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


class TestSendAction:
    """`t` on a mailing: its text now to MAILER_TEST_PHONES, each answer in a notification. A screen
    mixes it in and says which mailing with `test_send_target()` (an id, or None: none selected)."""

    @writes("sending a test")
    def action_test_send(self):
        mailing_id = self.test_send_target()
        if mailing_id is not None:
            notify_literal(self.app, f"sending mailing {mailing_id}'s text to the test numbers…")
            self._send_test(mailing_id)

    @db_work(group="mailing-test-send")
    def _send_test(self, mailing_id):
        try:
            rows = service.send_test(mailing_id)
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, str(exc), title="Test send", severity="error", timeout=10)
            return
        answers = "\n".join(f"{r.phone}: {r.outcome}" + (f" (HTTP {r.http_status})" if r.http_status else "")
                            + (f": {r.error}" if r.error else "") for r in rows)
        ok = all(r.outcome == "sent" for r in rows)
        deliver(self.app, notify_literal, self.app, answers, title=f"Test send of mailing {mailing_id}",
                severity="information" if ok else "error", timeout=15)


def delete_question(row):
    """The confirmation before deleting: a mailing that never started goes; one that started is
    archived (a ConfirmScreen answering True to go on)."""
    if row.started:
        return ConfirmScreen(f"Archive mailing {row.id}? It is hidden from the lists (shown on request: "
                             f"Archived on the mailings screen); its {row.materialized:,} message(s) and their "
                             f"journal stay for statistics and reports.", yes_label="Archive it")
    return ConfirmScreen(f"Delete mailing {row.id}? It never started: it goes for good.", yes_label="Delete it")


class CloneDeleteActions:
    """`C` clones a mailing (the editor opens pre-filled: a new mailing, or a resend to the clients of
    some of its messages) and `d` deletes it (asking first: one that started is archived). A screen
    mixes it in, says which mailing with `life_target()` (a stats.MailingRow, or None) and what follows
    with `cloned(mailing)` and `deleted(done)`."""

    @writes("cloning a mailing")
    def action_clone(self):
        from console.screens.mailing_editor import MailingEditor  # (the editor imports this module)
        row = self.life_target()
        if row is not None:
            self.app.push_screen(MailingEditor(clone_of=row), self.cloned)

    @writes("deleting a mailing")
    def action_delete(self):
        row = self.life_target()
        if row is None:
            return
        if row.state in SENDING_STATES:
            notify_literal(self.app, f"mailing {row.id} is {row.state}; cancel it first", severity="warning")
            return
        if row.archived:
            notify_literal(self.app, f"mailing {row.id} is archived already", severity="warning")
            return

        def answered(yes):
            if yes:
                self._delete(row.id)

        self.app.push_screen(delete_question(row), answered)

    @db_work(group="mailing-delete")
    def _delete(self, mailing_id):
        try:
            done = service.delete_mailing(mailing_id)
        except validation.ValidationError as exc:
            deliver(self.app, notify_literal, self.app, "; ".join(exc.errors.values()), severity="warning")
            return
        deliver(self.app, notify_literal, self.app, done.describe())
        deliver(self.app, self.deleted, done)
