"""The one settings object: every variable the service reads from its environment, read once.

A process reads its environment when it first needs a setting (`current()`), not when a module is
imported, and passes the object on; tests and tools build their own with `Settings.from_env(env)` and
install it with `use()`. The README's variable tables are checked against VARIABLES
(tests/unit/test_settings.py): a variable is documented where it is defined.
"""
import dataclasses
import decimal
import math
import os
import re
from dataclasses import dataclass, field

from domain import rates
from domain.validation import ValidationError, validate_tz
from domain.vocabulary import GATEWAY_BACKENDS, HOLD, IN_DOUBT_POLICIES, PROBE, RETRY_IN_DOUBT, SMSAERO

DEFAULT_GATEWAY_URL = "https://probe.fbrq.cloud/v1"
DEFAULT_SMSAERO_URL = "https://gate.smsaero.ru/v2"
DEFAULT_SMSAERO_SIGN = "SMS Aero"  # the sender name every SMS Aero account may use


def _number(kind, low=None, high=None):
    def parse(text):
        if not text.strip().isascii():  # int('٣') is 3: digits are the ASCII 0-9 only, everywhere
            raise ValueError(f"must be written in the digits 0-9 (got {text.strip()!r})")
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"must be a {'whole ' if kind is int else ''}number (got {text.strip()!r})") from None
        if not math.isfinite(value):  # nan and inf read as floats, and break every sum later
            raise ValueError(f"must be a finite number (got {text.strip()!r})")
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}")
        if high is not None and value > high:
            raise ValueError(f"must be at most {high}")
        return value
    return parse


def _zone(text):
    return validate_tz(text, "MAILER_TZ") if text.strip() else ""


def _http_url(text):
    url = text.strip()
    if not re.match(r"https?://[^/\s]+", url, flags=re.I):
        raise ValueError(f"must be an http:// or https:// URL (got {url!r})")
    return url.rstrip("/")


def _choice(*allowed):
    def parse(text):
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be {' or '.join(allowed)}")
        return value
    return parse


def _text(text):
    return text.strip()


@dataclass(frozen=True)
class Price:
    """What one SMS part costs: an exact amount and its currency ('' when not said)."""
    amount: decimal.Decimal
    currency: str = ""

    def of(self, parts):
        return Price(self.amount * parts, self.currency)

    def __str__(self):
        return f"{self.amount:,.2f}" + (f" {self.currency}" if self.currency else "")


def _price(text):
    """'0.35 RUB', '0.35' or 'RUB 0.35'."""
    words = text.split()
    number = [w for w in words if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,6})?", w)]
    other = [w for w in words if w not in number]
    if len(number) != 1 or len(other) > 1 or (other and not re.fullmatch(r"[A-Za-z]{3}|[^\w\s]", other[0])):
        raise ValueError(f"must be a price per part such as 0.35 RUB, in the digits 0-9 (got {text.strip()!r})")
    return Price(decimal.Decimal(number[0]), other[0].upper() if other else "")


def _window(text):
    # imported when a value is read: windows imports times, which reads these settings
    from domain.windows import format_window, parse_window
    try:
        window = parse_window(text)
    except ValidationError as exc:  # said of the variable, not of a mailing's field
        why = exc.errors["window"]
        raise ValueError(why if why.startswith("must") else f"must be a window such as 09:00-21:00 ({why})") from None
    return format_window(*window) if window else ""


def _raw(text):
    # A secret is taken as given: white space around a token is refused where it is checked
    # (engine.gateways.base.check_token), not silently cut off.
    return text


def var(name, default, parse=_text, secret=False):
    """A field read from the environment variable `name` (unset or empty: `default`)."""
    parse = _raw if secret else parse
    return field(default=default, repr=not secret,
                 metadata={"env": name, "parse": parse, "secret": secret})


@dataclass(frozen=True)
class Settings:
    # Storage and queue
    db_url: str = var("MAILER_DB_URL", "sqlite:///data/mailer.db")
    db_timeout: float = var("MAILER_DB_TIMEOUT", 30.0, _number(float, 0))
    queue_url: str = var("MAILER_QUEUE_URL", "")  # empty: derived from db_url (tasks.queue_url)
    # The operator
    tz: str = var("MAILER_TZ", "", _zone)  # empty: this machine's zone (times.operator_zone)
    theme: str = var("MAILER_THEME", "dark", _choice("dark", "light"))
    keymap: str = var("MAILER_KEYMAP", "")  # a file rebinding the console's keys by binding id
    export_dir: str = var("MAILER_EXPORT_DIR", "")  # the console's CSV exports; empty: beside the database
    # The gateway: which backend (engine.gateways), and each one's own variables
    gateway: str = var("MAILER_GATEWAY", PROBE, _choice(*GATEWAY_BACKENDS))
    gateway_url: str = var("PROBE_URL", DEFAULT_GATEWAY_URL, _http_url)
    token: str = var("PROBE_TOKEN", "", secret=True)
    smsaero_url: str = var("SMSAERO_URL", DEFAULT_SMSAERO_URL, _http_url)
    smsaero_email: str = var("SMSAERO_EMAIL", "")
    smsaero_api_key: str = var("SMSAERO_API_KEY", "", secret=True)
    smsaero_sign: str = var("SMSAERO_SIGN", DEFAULT_SMSAERO_SIGN)
    connect_timeout: float = var("MAILER_CONNECT_TIMEOUT", 3.05, _number(float, 0.01))
    read_timeout: float = var("MAILER_READ_TIMEOUT", 10.0, _number(float, 0.01))
    # The consumer and its dispatchers
    workers: int = var("MAILER_WORKERS", 2, _number(int, 1))
    dispatchers: int = var("MAILER_DISPATCHERS", 2, _number(int, 1))
    concurrency: int = var("MAILER_CONCURRENCY", 32, _number(int, 1))
    batch: int = var("MAILER_BATCH", 256, _number(int, 1))
    budget: float = var("MAILER_DISPATCH_BUDGET", 5.0, _number(float, 0.1))
    retry_base: float = var("MAILER_RETRY_BASE", 1.0, _number(float, 0))
    retry_cap: float = var("MAILER_RETRY_CAP", 300.0, _number(float, 0))
    # No attempt starts this close to the end: a request needs a moment to reach the gateway.
    end_guard: float = var("MAILER_END_GUARD", 0.5, _number(float, 0))
    # After a 401 or a redirect nobody sends for this long; then one batch finds out whether the
    # gateway takes us again.
    auth_pause: float = var("MAILER_AUTH_PAUSE", 60.0, _number(float, 0))
    # A mailing pauses itself when this share of its last attempts failed for good, counted over
    # fail_pause_window attempts, once at least fail_pause_min failed.
    fail_pause_ratio: float = var("MAILER_FAIL_PAUSE_RATIO", 0.5, _number(float, 0, 1))
    fail_pause_min: int = var("MAILER_FAIL_PAUSE_MIN", 20, _number(int, 1))
    fail_pause_window: int = 100
    # What an attempt in doubt becomes: `hold` (unknown, resent only by the operator) or `retry`.
    in_doubt: str = var("MAILER_IN_DOUBT", HOLD, _choice(*IN_DOUBT_POLICIES))

    # Quiet hours: the window of a mailing that names none ('any' names every hour)
    default_window: str = var("MAILER_DEFAULT_WINDOW", "", _window)

    # Test sends: the operator's own numbers, comma-separated (validated where they are used)
    test_phones: str = var("MAILER_TEST_PHONES", "")

    # Throughput caps shared by every consumer (domain.rates, engine.pacing)
    rate: float | None = var("MAILER_RATE", None, rates.parse_rate)
    rate_operators: dict = var("MAILER_RATE_OPERATOR", None, rates.parse_operator_rates)
    rate_unit: str = var("MAILER_RATE_UNIT", rates.MESSAGES, _choice(*rates.RATE_UNITS))

    # What a text costs (domain.segments)
    segment_price: Price | None = var("MAILER_SEGMENT_PRICE", None, _price)
    max_parts: int = var("MAILER_MAX_PARTS", 6, _number(int, 1))
    # Logs and metrics
    log_file: str = var("MAILER_LOG_FILE", "")  # empty: mailer.log beside the SQLite database
    log_format: str = var("MAILER_LOG_FORMAT", "json", _choice("json", "text"))
    metrics_port: str = var("MAILER_METRICS_PORT", "")  # checked where the server starts
    metrics_addr: str = var("MAILER_METRICS_ADDR", "127.0.0.1")
    # The daily report (checked together by ops.report.ReportConfig)
    smtp_host: str = var("MAILER_SMTP_HOST", "")
    smtp_port: str = var("MAILER_SMTP_PORT", "")
    smtp_security: str = var("MAILER_SMTP_SECURITY", "")
    smtp_user: str = var("MAILER_SMTP_USER", "")
    smtp_password: str = var("MAILER_SMTP_PASSWORD", "", secret=True)
    smtp_cafile: str = var("MAILER_SMTP_CAFILE", "")
    smtp_timeout: str = var("MAILER_SMTP_TIMEOUT", "")
    report_from: str = var("MAILER_REPORT_FROM", "")
    report_to: str = var("MAILER_REPORT_TO", "")
    report_time: str = var("MAILER_REPORT_TIME", "")

    @classmethod
    def from_env(cls, env=None):
        """Read every variable; a bad value is a ValidationError naming the variable."""
        env = os.environ if env is None else env
        values, errors = {}, {}
        for f in dataclasses.fields(cls):
            name = f.metadata.get("env")
            text = env.get(name) if name else None
            if text is None or not text.strip():
                continue
            try:
                values[f.name] = f.metadata["parse"](text)
            except ValidationError as exc:
                errors.update(exc.errors)
            except ValueError as exc:
                why = str(exc) if str(exc).startswith("must") else f"must be a number (got {text.strip()!r})"
                errors[name] = why
        if errors:
            raise ValidationError(errors)
        settings = cls(**values)
        conflicts = settings.conflicts()
        if conflicts:
            raise ValidationError(conflicts)
        return settings

    def conflicts(self):
        """Values each fine alone that do not go together: {variable: why}."""
        conflicts = {}
        if self.gateway == SMSAERO and self.in_doubt == RETRY_IN_DOUBT:
            # `retry` is for gateways that de-duplicate by msgId; SMS Aero's /sms/send takes no key of
            # ours, so every re-sent attempt in doubt could reach the phone twice (and be paid twice).
            conflicts["MAILER_IN_DOUBT"] = ("retry is refused with MAILER_GATEWAY=smsaero: SMS Aero cannot "
                                            "tell a re-sent message from a new one, so an attempt in doubt "
                                            "sent again may be delivered twice; use hold (the default) and "
                                            "resend in-doubt messages by hand after checking them")
        return conflicts

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


VARIABLES = {f.metadata["env"]: f for f in dataclasses.fields(Settings) if "env" in f.metadata}

_current = None


def current():
    """This process's settings, read from its environment the first time they are needed."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def use(settings):
    """Install settings for this process (a test, a tool, or `reload()`); returns them."""
    global _current
    _current = settings
    return settings


def reload(env=None):
    return use(Settings.from_env(env))
