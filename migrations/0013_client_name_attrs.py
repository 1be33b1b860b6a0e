"""Personal texts (issue 13, part 2): a client's name and free attributes (a JSON object of one-line
strings keyed by [a-z0-9_]+), which a mailing's text may name as {name} and {attr.KEY}. Every client
so far has no name and no attribute."""
from peewee import TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("client", "name", TextField(default="")),
        migrator.add_column("client", "attrs", TextField(default="{}")),
    )
