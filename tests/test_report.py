"""The daily report: built from a seeded database, sent to a real SMTP server (aiosmtpd) on
127.0.0.1 in clear, with STARTTLS and login, and with implicit TLS and login; the once-a-day rule."""
import datetime as dt
import email
import email.policy
import shutil
import subprocess
import time

import pytest

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402
from huey import MemoryHuey, SqliteHuey  # noqa: E402

from domain import settings, validation, vocabulary  # noqa: E402
from models import Attempt, Client, Mailing, Message  # noqa: E402
from domain.settings import Settings  # noqa: E402
from ops import report as rep  # noqa: E402
from ops import report_mail as mail  # noqa: E402
from support import free_port  # noqa: E402

TZ = "Europe/Moscow"  # UTC+3 all year
DAY = dt.date(2026, 3, 10)  # local day: 2026-03-09 21:00 .. 2026-03-10 21:00 UTC
NOW = dt.datetime(2026, 3, 11, 6, 0)  # naive UTC, the morning after
USER, PASSWORD = "reporter", "s3cret-Pa55word"
EVIL_TEXT = 'Sale <b>now</b> & "more" <script>alert(1)</script>'


def utc(day_offset, hour, minute=0):
    base = dt.datetime.combine(DAY, dt.time(0))
    return base + dt.timedelta(days=day_offset, hours=hour, minutes=minute)


# ---------------------------------------------------------------------------------------------------
# Data


@pytest.fixture
def seeded(database):
    clients = [Client.create(phone=f"7900000000{i}", operator="900", tag="", tz=TZ) for i in range(6)]

    def mailing(text, state, start, end, started=None, updated=None):
        return Mailing.create(text=text, state=state, start_at=start, end_at=end, started_at=started,
                              updated_at=updated or start)

    def messages(m, statuses):
        return [Message.create(mailing=m, client_id=clients[i].id, phone=clients[i].phone, status=s)
                for i, s in enumerate(statuses)]

    def attempts(msg, outcome, at, n=1, latency=20.0):
        for _ in range(n):
            Attempt.create(message=msg, mailing_id=msg.mailing_id, client_id=msg.client_id, at=at,
                           outcome=outcome, latency_ms=latency)

    # A: started and finished that day; 3 sent, 1 failed (after 2 retries), 1 expired.
    a = mailing(EVIL_TEXT, vocabulary.FINISHED, utc(0, 9), utc(0, 12), started=utc(0, 9))
    ma = messages(a, ["sent", "sent", "sent", "failed", "expired"])
    for m in ma[:3]:
        attempts(m, "sent", utc(0, 10))
    attempts(ma[3], "retry", utc(0, 10), n=2)
    attempts(ma[3], "failed", utc(0, 10, 5))
    attempts(ma[4], "expired", utc(0, 11, 59))
    # B: started the day before, still running; one send at 23:30 local (in the day), one at 00:30
    # local the next day (not in it), one the day before.
    b = mailing("Скидка 20% — Running\nmulti-line text", vocabulary.RUNNING, utc(-1, 10), utc(30, 0), started=utc(-1, 10))
    mb = messages(b, ["sent", "sent", "sent", "pending", "pending"])
    attempts(mb[0], "sent", utc(-1, 11))
    attempts(mb[1], "sent", utc(0, 20, 30))
    attempts(mb[2], "sent", utc(0, 21, 30))
    # C: all of it the day before: not in the report.
    c = mailing("yesterday only", vocabulary.FINISHED, utc(-2, 10), utc(-1, 12), started=utc(-2, 10))
    attempts(messages(c, ["sent"])[0], "sent", utc(-1, 11))
    # D: cancelled that day before it started.
    d = mailing("cancelled early", vocabulary.CANCELLED, utc(5, 0), utc(6, 0), updated=utc(0, 15))
    # E: scheduled for later: not in the report.
    mailing("later", vocabulary.SCHEDULED, utc(5, 0), utc(6, 0))
    assert not Message.select().where(Message.client_id.is_null()).exists()  # as the service writes them
    assert not Attempt.select().where(Attempt.client_id.is_null()).exists()
    return {"a": a.id, "b": b.id, "c": c.id, "d": d.id}


def test_build_report_counts_escaping_and_day_bounds(seeded):
    report = rep.build_report(DAY, TZ, now=NOW)
    assert [r["id"] for r in report.mailings] == [seeded["a"], seeded["b"], seeded["d"]]
    a, b, d = report.mailings
    assert (a["state"], a["total"], a["sent"], a["failed"], a["expired"], a["pending"]) == (
        "finished", 5, 3, 1, 1, 0)
    assert (a["day_attempts"], a["day_sent"]) == (6, 3)  # the expiry is a decision, not an attempt
    assert (b["state"], b["total"], b["sent"], b["pending"], b["day_attempts"], b["day_sent"]) == (
        "running", 5, 3, 2, 1, 1)
    assert (d["state"], d["total"], d["day_attempts"]) == ("cancelled", 0, 0)
    assert report.attempts == {"sent": 4, "retry": 2, "failed": 1, "expired": 1, "cancelled": 0,
                               "unknown": 0, "suppressed": 0}
    assert report.day == DAY and report.tz == TZ
    assert "2026-03-10" in report.subject and TZ in report.subject and "4 sent" in report.subject
    assert "<" not in report.subject

    # Plain text: readable, one line per mailing, the user's text as typed (flattened).
    assert f"Mailings processed on 2026-03-10 ({TZ})" in report.text
    assert EVIL_TEXT in report.text and "Скидка 20% — Running multi-line text" in report.text
    assert "yesterday only" not in report.text and "later" not in report.text
    total_line = [line for line in report.text.splitlines() if line.lstrip().startswith("all")][0]
    assert total_line.split()[1:4] == ["10", "2", "6"]  # total, pending, sent
    assert "2026-03-10 12:00:00 Europe/Moscow" in report.text  # A's start, in the operator's zone

    # HTML: a table, every user string escaped.
    html = report.html
    assert "<table" in html and html.count("<tr>") == 1 + 3 + 1  # header, 3 mailings, totals
    assert "<script>" not in html and "<b>now</b>" not in html
    assert "Sale &lt;b&gt;now&lt;/b&gt; &amp; &quot;more&quot; &lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_day_and_day_parsing(seeded):
    report = rep.build_report(dt.date(2025, 1, 1), TZ, now=NOW)
    assert report.mailings == [] and "No mailing was processed that day." in report.text
    assert "No mailing was processed" in report.html
    assert rep.parse_day("yesterday", TZ, now=NOW) == DAY
    assert rep.parse_day("today", TZ, now=utc(0, 22)) == DAY + dt.timedelta(days=1)  # 01:00 local
    assert rep.parse_day("2026-03-10", TZ) == DAY
    with pytest.raises(validation.ValidationError, match="day"):
        rep.parse_day("10/03/2026", TZ)


def test_local_day_bounds_follow_dst():
    lo, hi = rep.local_day_bounds(dt.date(2026, 3, 29), "Europe/Berlin")  # clocks jump at 02:00
    assert (lo, hi) == (dt.datetime(2026, 3, 28, 23, 0), dt.datetime(2026, 3, 29, 22, 0))
    lo, hi = rep.local_day_bounds(DAY, TZ)
    assert (lo, hi) == (dt.datetime(2026, 3, 9, 21, 0), dt.datetime(2026, 3, 10, 21, 0))


# ---------------------------------------------------------------------------------------------------
# A real SMTP server on 127.0.0.1


class Collector:
    def __init__(self):
        self.received = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append({
            "from": envelope.mail_from, "to": list(envelope.rcpt_tos),
            "data": envelope.original_content or envelope.content,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword)
            else None})
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
          and auth_data.password == PASSWORD.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A private CA and a server certificate for 127.0.0.1/localhost signed by it (openssl)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make the test certificates")
    d = tmp_path_factory.mktemp("tls")

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=mailer test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("basicConstraints=critical,CA:FALSE\n"
                               "keyUsage=critical,digitalSignature,keyEncipherment\n"
                               "extendedKeyUsage=serverAuth\n"
                               "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": str(d / "ca.pem"), "cert": str(d / "server.pem"), "key": str(d / "server.key")}


def server_context(tls_files):
    import ssl
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    return ctx


@pytest.fixture
def smtp_server():
    """start(mode, tls_files=None) -> (collector, port); stopped at teardown."""
    started = []

    def start(mode, tls=None):
        handler = Collector()
        kwargs = dict(hostname="127.0.0.1", server_hostname="localhost", ready_timeout=10)
        if mode == "starttls":
            kwargs.update(tls_context=server_context(tls), require_starttls=True, auth_required=True,
                          auth_require_tls=True, authenticator=authenticator)
        elif mode == "ssl":
            # Implicit TLS: the whole session is encrypted, so AUTH needs no STARTTLS first.
            kwargs.update(ssl_context=server_context(tls), auth_required=True, auth_require_tls=False,
                          authenticator=authenticator)
        for _ in range(5):  # a free port may be taken between probing and binding
            controller = Controller(handler, port=free_port(), **kwargs)
            try:
                controller.start()
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise AssertionError("could not start the SMTP server")
        started.append(controller)
        return handler, controller.port

    yield start
    for controller in started:
        controller.stop()


def config_env(port, security, **extra):
    env = {"MAILER_SMTP_HOST": "127.0.0.1", "MAILER_SMTP_PORT": str(port),
           "MAILER_SMTP_SECURITY": security, "MAILER_REPORT_FROM": "Mailer <mailer@example.test>",
           "MAILER_REPORT_TO": "ops@example.test, Boss <boss@example.test>", "MAILER_SMTP_TIMEOUT": "10"}
    env.update(extra)
    return env


def parse(received):
    return email.message_from_bytes(received["data"], policy=email.policy.default)


def assert_report_mail(received, report):
    assert received["from"] == "mailer@example.test"
    assert received["to"] == ["ops@example.test", "boss@example.test"]
    msg = parse(received)
    assert msg["Subject"] == report.subject
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert text.replace("\r\n", "\n") == report.text
    assert EVIL_TEXT in text and "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("<tr>") == 1 + 3 + 1  # header, 3 mailings, totals
    raw = received["data"].decode("utf-8", "replace")
    assert PASSWORD not in raw
    return msg


def test_send_plain(seeded, smtp_server):
    handler, port = smtp_server("none")
    report = rep.build_report(DAY, TZ, now=NOW)
    config = mail.ReportConfig.from_env(config_env(port, "none"))
    assert mail.send_report(report, config) == ["ops@example.test", "boss@example.test"]
    assert len(handler.received) == 1
    assert handler.received[0]["tls"] is False
    assert_report_mail(handler.received[0], report)


def test_send_starttls_with_login(seeded, smtp_server, tls_files, caplog):
    handler, port = smtp_server("starttls", tls_files)
    report = rep.build_report(DAY, TZ, now=NOW)
    env = config_env(port, "starttls", MAILER_SMTP_USER=USER, MAILER_SMTP_PASSWORD=PASSWORD,
                     MAILER_SMTP_CAFILE=tls_files["ca"])
    config = mail.ReportConfig.from_env(env)
    assert PASSWORD not in repr(config)
    mail.send_report(report, config)
    (got,) = handler.received
    assert got["tls"] is True and got["login"] == USER
    assert_report_mail(got, report)
    assert PASSWORD not in caplog.text

    # A wrong password is refused with a clear message that does not repeat it.
    bad = mail.ReportConfig.from_env({**env, "MAILER_SMTP_PASSWORD": "wrong-Pa55"})
    with pytest.raises(mail.ReportSendError, match="refused the login of 'reporter'") as info:
        mail.send_report(report, bad)
    assert "wrong-Pa55" not in str(info.value)
    # Without the private CA the certificate is not trusted: nothing is sent.
    untrusted = mail.ReportConfig.from_env({k: v for k, v in env.items() if k != "MAILER_SMTP_CAFILE"})
    with pytest.raises(mail.ReportSendError, match="MAILER_SMTP_CAFILE"):
        mail.send_report(report, untrusted)
    assert len(handler.received) == 1


def test_starttls_required_server_refuses_plain_login(seeded, smtp_server, tls_files):
    """A server offering STARTTLS still gets no mail (and no password) from a `none` client."""
    handler, port = smtp_server("starttls", tls_files)
    report = rep.build_report(DAY, TZ, now=NOW)
    with pytest.raises(mail.ReportSendError):
        mail.send_report(report, mail.ReportConfig.from_env(config_env(port, "none")))
    assert handler.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_send_implicit_tls_with_login(seeded, smtp_server, tls_files):
    handler, port = smtp_server("ssl", tls_files)
    report = rep.build_report(DAY, TZ, now=NOW)
    env = config_env(port, "ssl", MAILER_SMTP_USER=USER, MAILER_SMTP_PASSWORD=PASSWORD,
                     MAILER_SMTP_CAFILE=tls_files["ca"])
    mail.send_report(report, mail.ReportConfig.from_env(env))
    (got,) = handler.received
    assert got["tls"] is True and got["login"] == USER
    assert_report_mail(got, report)


def test_configuration_errors_are_clear():
    with pytest.raises(mail.ReportConfigError) as info:
        mail.ReportConfig.from_env({})
    message = str(info.value)
    for name in ("MAILER_SMTP_HOST", "MAILER_REPORT_FROM", "MAILER_REPORT_TO"):
        assert name in message
    base = config_env(2525, "starttls")
    with pytest.raises(mail.ReportConfigError, match="MAILER_SMTP_SECURITY must be one of"):
        mail.ReportConfig.from_env({**base, "MAILER_SMTP_SECURITY": "tls13"})
    with pytest.raises(mail.ReportConfigError, match="set both or neither") as info:
        mail.ReportConfig.from_env({**base, "MAILER_SMTP_PASSWORD": "hunter2-secret"})
    assert "hunter2-secret" not in str(info.value)
    with pytest.raises(mail.ReportConfigError, match="clear text"):
        mail.ReportConfig.from_env({**config_env(25, "none"), "MAILER_SMTP_USER": "u",
                                   "MAILER_SMTP_PASSWORD": "p"})
    with pytest.raises(mail.ReportConfigError, match="MAILER_REPORT_TIME"):
        mail.ReportConfig.from_env({**base, "MAILER_REPORT_TIME": "8am"})
    with pytest.raises(mail.ReportConfigError, match="invalid addresses"):
        mail.ReportConfig.from_env({**base, "MAILER_REPORT_TO": "ops@example.test, nobody"})
    defaults = {k: v for k, v in base.items() if k != "MAILER_SMTP_PORT"}
    assert mail.ReportConfig.from_env(defaults).port == 587
    assert mail.ReportConfig.from_env({**defaults, "MAILER_SMTP_SECURITY": "ssl"}).port == 465
    assert mail.ReportConfig.from_env(defaults).report_time == dt.time(8, 0)


# ---------------------------------------------------------------------------------------------------
# Once a day


@pytest.mark.parametrize("now_local, report_time, last, expected", [
    ("2026-03-11 07:59", "08:00", None, None),                 # not yet
    ("2026-03-11 08:00", "08:00", None, "2026-03-10"),         # morning report: yesterday
    ("2026-03-11 15:00", "08:00", None, "2026-03-10"),         # late (consumer was down): still sent
    ("2026-03-11 08:01", "08:00", "2026-03-10", None),         # already sent
    ("2026-03-11 08:01", "08:00", "2026-03-09", "2026-03-10"),
    ("2026-03-11 00:10", "08:00", "2026-03-09", None),         # before the time: wait
    ("2026-03-11 23:30", "23:30", None, "2026-03-11"),         # evening report: today
    ("2026-03-11 23:59", "12:00", "2026-03-11", None),
    ("2026-03-12 00:00", "00:00", "2026-03-10", "2026-03-11"),  # at midnight: the day just ended
])
def test_report_due(now_local, report_time, last, expected):
    now = dt.datetime.fromisoformat(now_local).replace(tzinfo=dt.timezone(dt.timedelta(hours=3)))
    last_day = dt.date.fromisoformat(last) if last else None
    got = mail.report_due(now, mail.parse_report_time(report_time), last_day)
    assert got == (dt.date.fromisoformat(expected) if expected else None)


def test_periodic_tick_sends_once_a_day(seeded, smtp_server, tmp_path):
    handler, port = smtp_server("none")
    store = SqliteHuey("mailer", filename=str(tmp_path / "queue.db"), results=False)  # as in production
    env = {**config_env(port, "none"), "MAILER_TZ": TZ, "MAILER_REPORT_TIME": "08:00"}

    assert mail.run_due_report(store, now=utc(1, 4, 59), settings=Settings.from_env(env)) is None  # 07:59 local
    assert mail.run_due_report(store, now=utc(1, 5, 0), settings=Settings.from_env(env)) == DAY   # 08:00 local
    assert mail.run_due_report(store, now=utc(1, 5, 1), settings=Settings.from_env(env)) is None
    assert mail.run_due_report(store, now=utc(1, 12, 0), settings=Settings.from_env(env)) is None
    assert len(handler.received) == 1
    assert "2026-03-10" in parse(handler.received[0])["Subject"]
    assert mail.run_due_report(store, now=utc(2, 5, 0), settings=Settings.from_env(env)) == DAY + dt.timedelta(days=1)
    assert len(handler.received) == 2

    # Without recipients: nothing, quietly.
    quiet = {k: v for k, v in env.items() if k != "MAILER_REPORT_TO"}
    assert mail.run_due_report(MemoryHuey("quiet"), now=utc(3, 5, 0), settings=Settings.from_env(quiet)) is None
    assert len(handler.received) == 2


def test_periodic_tick_claims_the_day_and_gives_up_after_failures(seeded, smtp_server):
    handler, port = smtp_server("none")
    store = MemoryHuey("report-claim")
    env = {**config_env(port, "none"), "MAILER_TZ": TZ}
    # Another consumer holds today's claim: this one does not send.
    assert store.put_if_empty(mail.CLAIM_KEY.format(day=DAY), "other")
    assert mail.run_due_report(store, now=utc(1, 5, 0), settings=Settings.from_env(env)) is None
    assert handler.received == []

    # A server that is down: three tries, then nothing more that day; the next day tries again.
    dead = {**env, "MAILER_SMTP_PORT": str(free_port()), "MAILER_SMTP_TIMEOUT": "2"}
    store = MemoryHuey("report-down")
    for minute in range(5):
        assert mail.run_due_report(store, now=utc(1, 5, minute), settings=Settings.from_env(dead)) is None
    assert store.get(mail.FAILURES_KEY.format(day=DAY), peek=True) == mail.MAX_FAILURES
    assert mail.run_due_report(store, now=utc(1, 5, 10), settings=Settings.from_env(env)) is None  # gave up for that day
    assert mail.run_due_report(store, now=utc(2, 5, 0), settings=Settings.from_env(env)) == DAY + dt.timedelta(days=1)
    assert len(handler.received) == 1


def test_periodic_task_is_registered_on_the_service_queue():
    import tasks
    assert tasks.send_daily_report.huey is tasks.huey
    registry = tasks.huey._registry
    assert registry._registry["tasks.send_daily_report"] is tasks.send_daily_report.task_class
    assert tasks.send_daily_report.task_class in registry._periodic_tasks
    # Checked every minute, in UTC or not: the task itself applies the local rule.
    assert tasks.send_daily_report.task_class().validate_datetime(dt.datetime(2026, 3, 11, 5, 0))


def test_cli_report(seeded, smtp_server, capsys, monkeypatch):
    handler, port = smtp_server("none")
    for key, value in {**config_env(port, "none"), "MAILER_TZ": TZ}.items():
        monkeypatch.setenv(key, value)
    settings.reload()  # the command line reads its environment once, as it starts
    assert mail.cli_report(send=False, day="2026-03-10") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Mailings processed on 2026-03-10 ({TZ})") and EVIL_TEXT in out
    assert mail.cli_report(send=True, day="2026-03-10") == 0
    assert capsys.readouterr().out.strip() == "sent to ops@example.test, boss@example.test"
    assert len(handler.received) == 1
    monkeypatch.delenv("MAILER_SMTP_HOST")
    settings.reload()
    assert mail.cli_report(send=True, day="2026-03-10") == 2
    assert "MAILER_SMTP_HOST is not set" in capsys.readouterr().err
