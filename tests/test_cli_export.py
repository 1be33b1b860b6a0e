"""Issue 13, part 5: `mailer mailings export ID [--status S] [FILE]`, a mailing's messages as a streamed
CSV (the console's `x` on a mailing writes the same: tests/console/test_read_only_export.py). The
messages come from a real send (a consumer and the gateway simulator) or from the service; the CSV is
checked against the database row by row, and every refusal leaves no file behind."""
import csv
import datetime as dt
import io
import resource
import signal
import subprocess
import zoneinfo

from support import MAILER, ROOT, phones, wait_for
from test_cli import refused_all

HEADER = ["Message id", "Phone", "Client id", "Status", "Attempts", "Created at (Europe/Moscow)",
          "Sent at (Europe/Moscow)", "Next attempt (Europe/Moscow)", "Last error", "Text"]
MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")


def rows_of(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def moscow(stored):
    """A stored naive-UTC time (SQLite text) as the export writes it."""
    if stored is None:
        return ""
    utc = dt.datetime.fromisoformat(stored).replace(tzinfo=dt.timezone.utc)
    return utc.astimezone(MOSCOW).strftime("%Y-%m-%d %H:%M:%S")


def expected(world, mailing_id, statuses=None):
    """The export's rows, read from the database: by client, deleted clients' messages (no client
    id) first by id; pending ones with their next attempt; the text defused as a spreadsheet needs."""
    where = f" AND status IN ({','.join('?' * len(statuses))})" if statuses else ""
    rows = world.query("SELECT id, phone, client_id, status, attempts, created_at, sent_at, next_attempt_at, "
                       f"last_error, text FROM message WHERE mailing_id = ?{where} "
                       "ORDER BY client_id IS NOT NULL, client_id, id", mailing_id, *(statuses or ()))

    def defused(value):
        value = value or ""
        return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value

    return [[str(i), phone, "" if client is None else str(client), status, str(attempts), moscow(created),
             moscow(sent), moscow(next_at) if status == "pending" else "", defused(error), defused(text)]
            for i, phone, client, status, attempts, created, sent, next_at, error, text in rows]


def test_a_real_sends_messages_exported_to_stdout_and_to_a_file(world, simulator):
    sim = simulator(reject_phones=[phones(6)[4]])
    world.use_gateway(sim)
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(6)])
    world.start_consumer()
    mailing = world.mailer_json("mailings", "create", "--text", "=1+1 is a sale", "--start", "now", "--end", "+5m")
    wait_for(lambda: world.statuses(mailing["id"]) == {"sent": 5, "failed": 1}, timeout=30,
             message="the mailing sent")
    for proc in world.consumers:
        world.stop(proc)
    world.mailer("clients", "delete", world.query("SELECT id FROM client WHERE phone = ?", phones(6)[2])[0][0])
    # one more, still pending: a client added after the consumer stopped
    world.mailer("clients", "add", "--phone", "79161234567")
    wait_for(lambda: len(world.query("SELECT id FROM message WHERE mailing_id = ?", mailing["id"])) == 7,
             timeout=10, message="the new client's message")

    out = world.mailer("mailings", "export", mailing["id"]).stdout
    rows = rows_of(out)
    assert rows[0] == HEADER
    assert rows[1:] == expected(world, mailing["id"])
    assert rows[1][2] == ""  # the deleted client's message first, its client id gone
    sent = [r for r in rows[1:] if r[3] == "sent"]
    assert len(sent) == 5 and all(r[6] and r[9] == "'=1+1 is a sale" and r[4] == "1" for r in sent)
    (failed,) = [r for r in rows[1:] if r[3] == "failed"]
    assert failed[1] == phones(6)[4] and "number blocked" in failed[8] and "\n" not in failed[8]
    (pending,) = [r for r in rows[1:] if r[3] == "pending"]
    assert pending[1] == "79161234567" and pending[7] and pending[9] == ""
    assert len(out.splitlines()) == len(rows)  # one line a message

    target = world.dir / "failed.csv"
    world.mailer("mailings", "export", mailing["id"], "--status", "failed", target)
    assert rows_of(target.read_text(encoding="utf-8")) == [HEADER, failed]
    # statuses repeated or as a comma list, each once; `-` is stdout; FILE replaced like clients export's
    both = world.mailer("mailings", "export", mailing["id"], "--status", "pending,failed", "--status",
                        "failed", "-").stdout
    assert rows_of(both)[1:] == expected(world, mailing["id"], ["pending", "failed"])
    world.mailer("mailings", "export", "--status", "sent", mailing["id"], target)
    assert rows_of(target.read_text(encoding="utf-8"))[1:] == sent
    assert sorted(p.name for p in world.dir.glob("*.csv*") if not p.name.startswith("clients-")) == ["failed.csv"]


def test_refusals_write_no_file_and_keep_an_existing_one(world):
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(3)])
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "+1h", "--end", "+2h")
    kept = world.dir / "kept.csv"
    kept.write_text("mine\n")
    new = world.dir / "new.csv"
    refused_all(world, [
        (["mailings", "export", 99], "error: id: no mailing with id 99"),
        (["mailings", "export", 99, new], "error: id: no mailing with id 99"),
        (["mailings", "export", 99, kept], "error: id: no mailing with id 99"),
        (["mailings", "export", mailing["id"], "--status", "sent,in doubt", new],
         "error: status: 'in doubt' is not a status: say pending, sent, failed"),
        (["mailings", "export", mailing["id"], "--status", "", kept], "error: status: '' is not a status"),
        (["mailings", "export", mailing["id"], world.dir / "no-such-folder" / "x.csv"],
         "error: file: No such file or directory: "),
        (["mailings", "export", mailing["id"], world.dir], "error: file: Is a directory: "),
    ])
    assert not new.exists() and kept.read_text() == "mine\n"
    assert not list(world.dir.rglob("*.part"))
    # an unknown mailing on stdout: nothing at all, not even the header
    result = world.mailer("mailings", "export", 99, check=False)
    assert result.returncode == 2 and result.stdout == ""


def run_limited(world, *args, stdout=subprocess.PIPE, file_size=None):
    """`mailer *args` with its stdout where given and, with file_size, files it writes limited to that
    many bytes (RLIMIT_FSIZE; SIGXFSZ ignored, so a write past it fails with EFBIG as on a full disk)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    env = {**world.env, "MAILER_LOG_FILE": "/dev/null"}
    return subprocess.run(MAILER + [str(a) for a in args], env=env, cwd=ROOT, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=60,
                          preexec_fn=limit if file_size else None)


def test_a_full_disk_is_said_without_a_traceback_and_leaves_no_part(world):
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(2_000)])
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+2h")
    world.mailer("mailings", "pause", mailing["id"])  # no consumer runs; nothing changes meanwhile
    with open("/dev/full", "w") as full:
        result = run_limited(world, "mailings", "export", mailing["id"], stdout=full)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "error: file: No space left on device: stdout\n"

    kept = world.dir / "kept.csv"
    kept.write_text("the last export\n")
    result = run_limited(world, "mailings", "export", mailing["id"], kept, file_size=64 * 1024)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"error: file: File too large: {kept}\n"
    assert kept.read_text() == "the last export\n" and not list(world.dir.glob("*.part"))
    # and with room, the whole of it
    result = run_limited(world, "mailings", "export", mailing["id"], kept)
    assert result.returncode == 0 and len(rows_of(kept.read_text(encoding="utf-8"))) == 2_001


def test_a_link_is_followed_and_a_pipe_written_into_never_replaced(world):
    """FILE names where the export goes, not a file to put in its place: a symbolic link keeps
    pointing at its target, which gets the export; a named pipe (as a device such as /dev/null)
    is written into and stays a pipe."""
    import os
    import stat
    import threading
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(5)])
    mailing = world.mailer_json("mailings", "create", "--text", "t", "--start", "now", "--end", "+2h")
    world.mailer("mailings", "pause", mailing["id"])
    target, link = world.dir / "target.csv", world.dir / "link.csv"
    target.write_text("old\n")
    link.symlink_to(target)
    for command in (["mailings", "export", mailing["id"], link], ["clients", "export", link]):
        world.mailer(*command)
        assert link.is_symlink() and os.readlink(link) == str(target)
        assert len(rows_of(target.read_text(encoding="utf-8"))) == 6
    pipe = world.dir / "pipe"
    os.mkfifo(pipe)
    for command in (["mailings", "export", mailing["id"], pipe], ["clients", "export", pipe]):
        received = []
        reader = threading.Thread(target=lambda: received.append(pipe.read_text(encoding="utf-8")))
        reader.start()
        world.mailer(*command)
        reader.join(timeout=30)
        assert len(rows_of(received[0])) == 6 and stat.S_ISFIFO(pipe.lstat().st_mode)
    assert not list(world.dir.glob("*.part"))


def test_the_directory_export_on_a_full_disk_keeps_the_last_one(world):
    world.import_clients([(p, "", "", "Europe/Moscow") for p in phones(3_000)])
    world.query("PRAGMA wal_checkpoint(TRUNCATE)")  # the export's process has nothing to write back
    kept = world.dir / "clients.csv"
    kept.write_text("the last export\n")
    result = run_limited(world, "clients", "export", kept, file_size=64 * 1024)
    assert result.returncode == 2 and result.stderr == f"error: file: File too large: {kept}\n", result.stderr
    assert kept.read_text() == "the last export\n" and not list(world.dir.glob("*.part"))
    with open("/dev/full", "w") as full:
        result = run_limited(world, "clients", "export", "-", stdout=full)
    assert result.returncode == 2 and result.stderr == "error: file: No space left on device: stdout\n"
    assert world.mailer("clients", "export", "-").stdout.count("\n") == 3_001
    assert not (world.root / "-").exists() and not (world.dir / "-").exists()
