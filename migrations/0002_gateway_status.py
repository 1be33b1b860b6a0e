"""The gateway's standing (paused after a 401), shared by every consumer and shown on the dashboard."""
import datetime

from peewee import *


def up(migrator, db):
    class GatewayStatus(Model):
        name = CharField(primary_key=True)
        paused_until = DateTimeField(null=True)
        reason = TextField(default="")
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "gateway_status"

    db.create_tables([GatewayStatus])
