"""The weekdays a mailing sends on (issue 12, quiet hours): a bitmask, bit 0 Monday; NULL for every
day, so every mailing so far keeps sending as it did."""
from peewee import IntegerField


def up(migrator, db):
    migrator.migrate(migrator.add_column("mailing", "days", IntegerField(null=True)))
