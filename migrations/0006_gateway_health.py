"""The gateway's health as each consumer's attempts find it, carried by its heartbeat: the last attempt
that got an answer, since when attempts get none (connection refused, reset, timed out, an unreadable
answer), the last that got none and why. The dashboard reads it; nothing decides by it.

Added like 0004's columns: the times nullable, the cause NOT NULL with a default in the database
itself (one ALTER TABLE each, no rewrite)."""
from peewee import SQL, DateTimeField, TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("heartbeat", "gateway_ok_at", DateTimeField(null=True)),
        migrator.add_column("heartbeat", "gateway_failing_since", DateTimeField(null=True)),
        migrator.add_column("heartbeat", "gateway_failed_at", DateTimeField(null=True)),
        migrator.add_column("heartbeat", "gateway_error",
                            TextField(default="", constraints=[SQL("DEFAULT ''")]), allow_not_null=True),
    )
