"""HTTP API tokens (issue 14, part 2): only a token's SHA-256 is stored, with its scope, a name for
the operator, when it was made, last used and revoked. A revoked token's row stays, so `api-token
list` still says what it was."""
import datetime

from peewee import CharField, DateTimeField, Model


def up(migrator, db):
    class ApiToken(Model):
        name = CharField(default="")
        scope = CharField()
        hash = CharField(max_length=64, unique=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        last_used_at = DateTimeField(null=True)
        revoked_at = DateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_token"

    db.create_tables([ApiToken])
