"""The first schema: clients, mailings, messages, the send journal and consumer heartbeats.

A frozen copy of the models as they were, so later changes to models.py do not rewrite history.
"""
import datetime

from peewee import *


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Client(Base):
        phone = CharField(max_length=11, unique=True)
        operator = CharField(max_length=3, index=True)
        tag = CharField(max_length=64, default="", index=True)
        tz = CharField(max_length=64)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

    class Mailing(Base):
        text = TextField()
        start_at = DateTimeField()
        end_at = DateTimeField()
        operator = CharField(max_length=3, null=True)
        tag = CharField(max_length=64, null=True)
        window_start = IntegerField(null=True)
        window_end = IntegerField(null=True)
        state = CharField(default="scheduled", index=True)
        state_reason = TextField(default="")
        started_at = DateTimeField(null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

    class Message(Base):
        mailing = ForeignKeyField(Mailing, on_delete="CASCADE", index=False)
        client_id = IntegerField(null=True)
        phone = CharField(max_length=11)
        text = TextField(null=True)
        status = CharField(default="pending")
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        sent_at = DateTimeField(null=True)
        attempts = IntegerField(default=0)
        last_error = TextField(default="")
        next_attempt_at = DateTimeField(null=True)
        lease_owner = CharField(null=True)
        lease_until = DateTimeField(null=True)
        sending_since = DateTimeField(null=True)

        class Meta:
            indexes = (
                (("mailing", "client_id"), True),
                (("mailing", "status", "next_attempt_at"), False),
            )

    Message.add_index(Message.lease_owner, where=Message.lease_owner.is_null(False))

    class Attempt(Base):
        message = ForeignKeyField(Message, on_delete="CASCADE")
        mailing_id = IntegerField(index=True)
        client_id = IntegerField(null=True, index=True)
        at = DateTimeField(default=datetime.datetime.utcnow, index=True)
        outcome = CharField()
        http_status = IntegerField(null=True)
        latency_ms = FloatField(null=True)
        error = TextField(default="")

    class Heartbeat(Base):
        owner = CharField(unique=True)
        host = CharField()
        pid = IntegerField()
        gateway = CharField(default="")
        started_at = DateTimeField(default=datetime.datetime.utcnow)
        beat_at = DateTimeField(default=datetime.datetime.utcnow)

    db.create_tables([Client, Mailing, Message, Attempt, Heartbeat])
