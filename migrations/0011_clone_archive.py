"""Clone and resend, delete and archive (issue 13, parts 3 and 4): the mailing a clone was made from,
the statuses of its messages whose clients a resend reaches (NULL: its filter's audience, as any
mailing's), and when a mailing that had started was archived (hidden from lists, kept for statistics).
NULL everywhere for every mailing so far, so they keep their audiences and stay listed."""
from peewee import CharField, DateTimeField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("mailing", "source_id", IntegerField(null=True)),
        migrator.add_column("mailing", "source_statuses", CharField(null=True)),
        migrator.add_column("mailing", "archived_at", DateTimeField(null=True)),
    )
