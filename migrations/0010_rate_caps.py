"""Throughput caps (issue 12, part 4): one token bucket per cap, shared by every consumer, and a
mailing that spreads its messages evenly until its end instead of sending them at once."""
from peewee import BooleanField, CharField, DoubleField, Model


def up(migrator, db):
    class RateBucket(Model):
        key = CharField(primary_key=True)
        tokens = DoubleField()
        at = DoubleField()
        rate = DoubleField()
        unit = CharField()

        class Meta:
            database = db
            table_name = "rate_bucket"

    db.create_tables([RateBucket])
    migrator.migrate(migrator.add_column("mailing", "spread", BooleanField(default=False)))
