"""Personal texts (issue 13, part 2): a client's name and free attributes (a JSON object of one-line
strings keyed by [a-z0-9_]+), which a mailing's text may name as {name} and {attr.KEY}. Every client
so far has no name and no attribute. The defaults are the database's too: an import of a file
with neither inserts the columns it always did."""
from peewee import SQL, TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("client", "name", TextField(default="", constraints=[SQL("DEFAULT ''")])),
        migrator.add_column("client", "attrs", TextField(default="{}", constraints=[SQL("DEFAULT '{}'")])),
    )
