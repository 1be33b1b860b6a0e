"""`mailer console --read-only`: look without touching.

Each console action that changes something is tagged `@writes("what it does")`; in a read-only
console a tagged action only says "read-only: … is refused", before any form or question opens. This
decorator is the one check. Behind it, `mailer console --read-only` opens the database read-only
(models.open_database(read_only=True)): an action nobody tagged fails there instead of writing.
"""
import functools

from textual.app import App

from console.workers import notify_literal


def refuse(app, what):
    notify_literal(app, f"read-only: {what} is refused (the console was started with --read-only)",
                   title="Read-only", severity="warning")


def writes(what):
    """Tag an action method of a screen, widget or the app as one that writes (`what`: "deleting a
    client"). In a read-only console it refuses, with a notice, and does nothing."""

    def decorator(method):
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            app = self if isinstance(self, App) else self.app
            if getattr(app, "read_only", False):
                refuse(app, what)
                return None
            return method(self, *args, **kwargs)

        guarded.writes = what
        return guarded

    return decorator


def writing_actions(cls):
    """{action name: what it writes} of the actions `cls` (and its bases) tags with `writes`."""
    return {name[len("action_"):]: getattr(cls, name).writes for name in dir(cls)
            if name.startswith("action_") and hasattr(getattr(cls, name, None), "writes")}
