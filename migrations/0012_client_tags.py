"""Richer audiences (issue 13, part 1): several tags per client, and a mailing's filter of several
operators, tags any of / all of / none of and a frequency cap.

`client_tags` holds every tag of every client, keyed by (client_id, tag) (WITHOUT ROWID on SQLite: the
key is the table, so a tag costs one B-tree entry there and one in the (tag, client_id) index the
filters read). It is filled from `client.tag`, which stays the client's first tag. `mailing.audience`
is the filter as JSON, NULL for every mailing so far: their `operator` and `tag` columns say it, read
as before. The frequency cap reads the journal by client (attempt.client_id, indexed already)."""
import peewee
from peewee import TextField


def up(migrator, db):
    sqlite = isinstance(db, peewee.SqliteDatabase)
    db.execute_sql("CREATE TABLE client_tags (client_id INTEGER NOT NULL, tag VARCHAR(64) NOT NULL, "
                   "PRIMARY KEY (client_id, tag))" + (" WITHOUT ROWID" if sqlite else ""))
    db.execute_sql("INSERT INTO client_tags (client_id, tag) SELECT id, tag FROM client WHERE tag <> '' "
                   "ORDER BY id")
    db.execute_sql("CREATE INDEX client_tags_tag_client_id ON client_tags (tag, client_id)")
    migrator.migrate(migrator.add_column("mailing", "audience", TextField(null=True)))
