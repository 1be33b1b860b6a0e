"""Fencing and liveness without clocks: a message remembers that an attempt of it was in doubt, and a
heartbeat carries a counter (observed to move, not compared with a clock) and the identity of the
kernel and PID namespace it runs in (a PID is only checked where that namespace is shared).

Each column is added NOT NULL with a default in the database itself: one ALTER TABLE, no rewrite of a
million-row table, and inserts that do not name the column (INSERT ... SELECT) still work."""
from peewee import SQL, BigIntegerField, BooleanField, CharField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("message", "in_doubt",
                            BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")]),
                            allow_not_null=True),
        migrator.add_column("heartbeat", "seq", IntegerField(default=0, constraints=[SQL("DEFAULT 0")]),
                            allow_not_null=True),
        migrator.add_column("heartbeat", "node", CharField(default="", constraints=[SQL("DEFAULT ''")]),
                            allow_not_null=True),
        migrator.add_column("heartbeat", "proc_start", BigIntegerField(null=True)),
    )
