"""The stop list: phones that refused mailings, with where the refusal came from, why and when."""
import datetime

from peewee import CharField, DateTimeField, Model, TextField


def up(migrator, db):
    class OptOut(Model):
        phone = CharField(max_length=11, primary_key=True)
        source = CharField(default="cli")
        reason = TextField(default="")
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            database = db
            table_name = "opt_out"

    db.create_tables([OptOut])
