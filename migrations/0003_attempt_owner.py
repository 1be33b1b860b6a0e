"""Which consumer made each attempt (its heartbeat owner, host:pid:tag), so the journal shows how the
work spread over several consumers. Rows from before have none."""
from peewee import CharField


def up(migrator, db):
    migrator.migrate(migrator.add_column("attempt", "owner", CharField(null=True)))
