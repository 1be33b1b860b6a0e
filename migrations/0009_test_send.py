"""Test sends: a mailing's text sent now to the operator's own numbers, recorded apart from the
mailing's messages (its statistics leave them out), with what the gateway answered."""
import datetime

from peewee import CharField, DateTimeField, FloatField, IntegerField, Model, TextField


def up(migrator, db):
    class TestSend(Model):
        mailing_id = IntegerField(index=True)
        phone = CharField(max_length=11)
        text = TextField()
        at = DateTimeField(default=datetime.datetime.utcnow)
        outcome = CharField(default="sending")
        http_status = IntegerField(null=True)
        latency_ms = FloatField(null=True)
        error = TextField(default="")

        class Meta:
            database = db
            table_name = "test_send"

    db.create_tables([TestSend])
