"""Statistics from counters (issue 15, part 4): how many messages each mailing has in each status,
kept by the database itself in the transaction of every statement that inserts, deletes or changes
the status of a message. No code path can forget them (a bulk expiry, a takeover, an opt-out, a raw
INSERT in a test fixture all count), and reading them does not scan the mailing's messages.

SQLite (one writer at a time anyway): row triggers keep `message_counts(mailing_id, status, n)`, one
row per pair, by an upsert. A mailing's delete removes its rows (its messages' cascade leaves zeros).

PostgreSQL (several consumers write at once): one counter row per pair would serialize every
transaction settling that mailing's messages on the row's lock until it commits. Statement triggers
with transition tables instead insert one aggregated delta row per (mailing, status) per statement
into `message_count_delta`, which is only ever inserted into (no contention); a reader sums a
mailing's rows, and domain.counts.fold() replaces many rows of a mailing by their sums now and
then. An UPDATE trigger cannot name columns when it has transition tables, so it fires for every
UPDATE of message (leases too): it adds +1 per new row and -1 per old row by (mailing, status) and
keeps the sums that are not zero, no join of the two tables.

Both back-fill from the messages there are, after the triggers exist, in this migration's
transaction (PostgreSQL's CREATE TRIGGER locks the table against writers until it commits)."""
import peewee

SQLITE = (
    "CREATE TABLE message_counts (mailing_id INTEGER NOT NULL, status VARCHAR(255) NOT NULL, "
    "n INTEGER NOT NULL, PRIMARY KEY (mailing_id, status)) WITHOUT ROWID",
    """CREATE TRIGGER message_counts_insert AFTER INSERT ON message BEGIN
         INSERT INTO message_counts (mailing_id, status, n) VALUES (NEW.mailing_id, NEW.status, 1)
         ON CONFLICT (mailing_id, status) DO UPDATE SET n = n + 1;
       END""",
    """CREATE TRIGGER message_counts_update AFTER UPDATE OF status, mailing_id ON message
       WHEN OLD.status IS NOT NEW.status OR OLD.mailing_id IS NOT NEW.mailing_id BEGIN
         UPDATE message_counts SET n = n - 1 WHERE mailing_id = OLD.mailing_id AND status = OLD.status;
         INSERT INTO message_counts (mailing_id, status, n) VALUES (NEW.mailing_id, NEW.status, 1)
         ON CONFLICT (mailing_id, status) DO UPDATE SET n = n + 1;
       END""",
    # An UPDATE only: a pair with messages has its row (a missing one would be a bug to see, not
    # to paper over with a negative count).
    """CREATE TRIGGER message_counts_delete AFTER DELETE ON message BEGIN
         UPDATE message_counts SET n = n - 1 WHERE mailing_id = OLD.mailing_id AND status = OLD.status;
       END""",
    """CREATE TRIGGER message_counts_mailing_delete AFTER DELETE ON mailing BEGIN
         DELETE FROM message_counts WHERE mailing_id = OLD.id;
       END""",
    "INSERT INTO message_counts (mailing_id, status, n) "
    "SELECT mailing_id, status, COUNT(*) FROM message GROUP BY mailing_id, status",
)

POSTGRES = (
    "CREATE TABLE message_count_delta (mailing_id INTEGER NOT NULL, status VARCHAR(255) NOT NULL, "
    "n BIGINT NOT NULL)",
    "CREATE INDEX message_count_delta_mailing_id ON message_count_delta (mailing_id)",
    """CREATE FUNCTION message_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         INSERT INTO message_count_delta (mailing_id, status, n)
         SELECT mailing_id, status, COUNT(*) FROM new_rows GROUP BY mailing_id, status;
         RETURN NULL;
       END $$""",
    """CREATE FUNCTION message_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         INSERT INTO message_count_delta (mailing_id, status, n)
         SELECT mailing_id, status, SUM(n) FROM (
           SELECT mailing_id, status, 1 AS n FROM new_rows
           UNION ALL SELECT mailing_id, status, -1 FROM old_rows) changed
         GROUP BY mailing_id, status HAVING SUM(n) <> 0;
         RETURN NULL;
       END $$""",
    """CREATE FUNCTION message_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         INSERT INTO message_count_delta (mailing_id, status, n)
         SELECT mailing_id, status, -COUNT(*) FROM old_rows GROUP BY mailing_id, status;
         RETURN NULL;
       END $$""",
    "CREATE TRIGGER message_counts_insert AFTER INSERT ON message REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION message_counts_insert()",
    "CREATE TRIGGER message_counts_update AFTER UPDATE ON message "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION message_counts_update()",
    "CREATE TRIGGER message_counts_delete AFTER DELETE ON message REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION message_counts_delete()",
    "INSERT INTO message_count_delta (mailing_id, status, n) "
    "SELECT mailing_id, status, COUNT(*) FROM message GROUP BY mailing_id, status",
)


def up(migrator, db):
    for sql in (SQLITE if isinstance(db, peewee.SqliteDatabase) else POSTGRES):
        db.execute_sql(sql)
