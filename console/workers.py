"""Database work off the UI thread.

`db_work` makes a thread worker that never takes the app down: an exception is shown as a
notification (literally, never as markup) and the app keeps running. Results go back to the UI with
`deliver`, which silently drops them when the worker was superseded or the app is closing.
"""
import functools

from textual import work
from textual.dom import DOMNode
from textual.worker import get_current_worker


def notify_literal(app, message, *, title="", severity="information", timeout=None):
    """A notification whose text is shown as typed (user and gateway strings are not markup)."""
    kwargs = {"title": title, "severity": severity, "markup": False}
    if timeout is not None:
        kwargs["timeout"] = timeout
    app.notify(str(message), **kwargs)


def report_error(app, exc, title="Database error"):
    """From a worker thread: show `exc` as an error notification."""
    deliver(app, notify_literal, app, f"{type(exc).__name__}: {exc}", title=title,
            severity="error", timeout=8)


def deliver(app, callback, *args, **kwargs):
    """Run `callback` on the UI thread unless this worker was cancelled, the app has stopped, or the
    screen/widget the callback belongs to has gone (e.g. a dialog closed while its query ran)."""
    try:
        worker = get_current_worker()
    except Exception:
        worker = None
    if worker is not None and worker.is_cancelled:
        return None
    owner = getattr(callback, "__self__", None)

    def on_ui_thread():
        if isinstance(owner, DOMNode) and owner is not app and not (owner.is_running and owner.is_attached):
            return None
        return callback(*args, **kwargs)

    try:
        return app.call_from_thread(on_ui_thread)
    except RuntimeError:  # the app is not running any more
        return None


def db_work(group, exclusive=True):
    """Decorate a method to run in a thread worker of `group`; errors become notifications."""

    def decorator(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any failure is reported, none is fatal
                report_error(self.app, exc)
                return None

        return work(guarded, thread=True, exclusive=exclusive, group=group, exit_on_error=False)

    return decorator
