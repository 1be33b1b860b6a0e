"""Settings read from an environment: defaults, parsing, errors that name the variable, secrets kept
out of repr; and README.md documents exactly the variables there are.

The README check: every variable in VARIABLES is named in the first cell of a row of one of the
README's tables (a `| Variable | Default | Meaning |` table), and every MAILER_*/PROBE_*/SMSAERO_* name
the README mentions anywhere exists. A name written as a family, `PROBE_*`, must be the prefix of at
least one variable."""
import dataclasses
import re
from pathlib import Path

import pytest

from domain.settings import VARIABLES, Settings
from domain.validation import ValidationError

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
NAME = re.compile(r"\b(?:MAILER|PROBE|SMSAERO)_[A-Z0-9_]*[A-Z0-9](?:_\*)?|\b(?:MAILER|PROBE|SMSAERO)_\*")


def test_an_empty_environment_gives_the_defaults():
    s = Settings.from_env({})
    assert s == Settings()
    assert (s.db_url, s.db_timeout, s.workers, s.dispatchers, s.concurrency, s.batch) == (
        "sqlite:///data/mailer.db", 30.0, 2, 2, 32, 256)
    assert (s.retry_base, s.retry_cap, s.end_guard, s.in_doubt, s.budget) == (1.0, 300.0, 0.5, "hold", 5.0)
    assert (s.auth_pause, s.fail_pause_ratio, s.fail_pause_min, s.theme) == (60.0, 0.5, 20, "dark")
    assert (s.gateway_url, s.token, s.log_format, s.metrics_addr) == (
        "https://probe.fbrq.cloud/v1", "", "json", "127.0.0.1")


def test_values_are_parsed_to_their_fields_types():
    s = Settings.from_env({"MAILER_WORKERS": " 8 ", "MAILER_RETRY_CAP": "12.5", "MAILER_IN_DOUBT": " RETRY ",
                           "MAILER_THEME": "Light", "PROBE_URL": " http://127.0.0.1:9/v1 ", "PROBE_TOKEN": "t0k"})
    assert (s.workers, s.retry_cap, s.in_doubt, s.theme) == (8, 12.5, "retry", "light")
    assert (s.gateway_url, s.token) == ("http://127.0.0.1:9/v1", "t0k")


def test_a_blank_variable_counts_as_unset():
    assert Settings.from_env({"MAILER_WORKERS": "  ", "MAILER_DB_URL": ""}) == Settings()


def test_variables_outside_the_settings_are_ignored():
    assert Settings.from_env({"MAILER_NO_SUCH_THING": "x", "HOME": "/root"}) == Settings()


@pytest.mark.parametrize("name, value, why", [
    ("MAILER_WORKERS", "many", "must be a whole number (got 'many')"),
    ("MAILER_BATCH", "2.5", "must be a whole number (got '2.5')"),
    ("MAILER_CONCURRENCY", "0", "must be at least 1"),
    ("MAILER_READ_TIMEOUT", "0", "must be at least 0.01"),
    ("MAILER_RETRY_BASE", "-1", "must be at least 0"),
    ("MAILER_IN_DOUBT", "maybe", "must be hold or retry"),
    ("MAILER_THEME", "blue", "must be dark or light"),
    ("MAILER_LOG_FORMAT", "xml", "must be json or text"),
])
def test_a_bad_value_is_an_error_naming_the_variable(name, value, why):
    with pytest.raises(ValidationError) as refusal:
        Settings.from_env({name: value})
    assert refusal.value.errors == {name: why}
    assert str(refusal.value) == f"{name}: {why}"


def test_every_bad_variable_is_reported_at_once():
    with pytest.raises(ValidationError) as refusal:
        Settings.from_env({"MAILER_WORKERS": "x", "MAILER_THEME": "blue", "MAILER_BATCH": "10"})
    assert set(refusal.value.errors) == {"MAILER_WORKERS", "MAILER_THEME"}


def test_secrets_are_not_in_repr():
    s = Settings.from_env({"PROBE_TOKEN": "tok-SECRET-123", "MAILER_SMTP_PASSWORD": "pw-SECRET-456",
                           "MAILER_SMTP_USER": "reporter"})
    shown = repr(s)
    assert "SECRET" not in shown
    assert "reporter" in shown  # repr still shows what is not secret
    assert s.token == "tok-SECRET-123" and s.smtp_password == "pw-SECRET-456"


def test_only_the_gateways_keys_and_the_smtp_password_are_secret():
    assert sorted(n for n, f in VARIABLES.items() if f.metadata["secret"]) == [
        "MAILER_SMTP_PASSWORD", "PROBE_TOKEN", "SMSAERO_API_KEY"]


def test_the_gateway_backend_and_sms_aeros_variables():
    s = Settings.from_env({})
    assert (s.gateway, s.smsaero_url, s.smsaero_sign, s.smsaero_email, s.smsaero_api_key) == (
        "probe", "https://gate.smsaero.ru/v2", "SMS Aero", "", "")
    s = Settings.from_env({"MAILER_GATEWAY": " SMSAero ", "SMSAERO_EMAIL": "ops@example.com",
                           "SMSAERO_API_KEY": "key-SECRET-0123456789", "SMSAERO_URL": "http://127.0.0.1:9/v2/",
                           "SMSAERO_SIGN": " Shop "})
    assert (s.gateway, s.smsaero_email, s.smsaero_url, s.smsaero_sign) == (
        "smsaero", "ops@example.com", "http://127.0.0.1:9/v2", "Shop")
    assert "SECRET" not in repr(s) and s.smsaero_api_key == "key-SECRET-0123456789"
    assert Settings.from_env({"MAILER_GATEWAY": "console"}).gateway == "console"


def test_an_unknown_gateway_backend_is_refused():
    with pytest.raises(ValidationError) as refusal:
        Settings.from_env({"MAILER_GATEWAY": "twilio"})
    assert refusal.value.errors == {"MAILER_GATEWAY": "must be probe or console or smsaero"}


def test_retrying_attempts_in_doubt_is_refused_with_sms_aero():
    """SMS Aero cannot de-duplicate a re-sent message: `retry` could deliver an SMS twice."""
    with pytest.raises(ValidationError) as refusal:
        Settings.from_env({"MAILER_GATEWAY": "smsaero", "MAILER_IN_DOUBT": "retry"})
    why = refusal.value.errors["MAILER_IN_DOUBT"]
    assert list(refusal.value.errors) == ["MAILER_IN_DOUBT"]
    assert why.startswith("retry is refused with MAILER_GATEWAY=smsaero") and "delivered twice" in why
    # the other backends keep the choice; hold stays the default with SMS Aero
    assert Settings.from_env({"MAILER_GATEWAY": "probe", "MAILER_IN_DOUBT": "retry"}).in_doubt == "retry"
    assert Settings.from_env({"MAILER_GATEWAY": "console", "MAILER_IN_DOUBT": "retry"}).in_doubt == "retry"
    assert Settings.from_env({"MAILER_GATEWAY": "smsaero"}).in_doubt == "hold"


def test_settings_are_frozen_and_replace_makes_a_new_one():
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.workers = 3
    assert s.replace(workers=3).workers == 3 and s.workers == 2


def test_every_default_is_a_value_its_own_variable_accepts():
    for name, f in VARIABLES.items():
        if f.default not in ("", None):
            assert getattr(Settings.from_env({name: str(f.default)}), f.name) == f.default, name


# ---------------------------------------------------------------------------------------------------
# README.md


def _table_variables(text):
    """Names in the first cell of every table row."""
    names = set()
    for line in text.splitlines():
        if line.startswith("|"):
            first = line.split("|")[1]
            names |= set(NAME.findall(first))
    return names


def test_the_readme_scan_reads_tables_and_families():
    sample = ("| `MAILER_A`, `MAILER_B_C` | 1 | x |\n| `MAILER_D` / `PROBE_E` | 2 | y |\n"
              "text `MAILER_F` and PROBE_* pass through\n")
    assert _table_variables(sample) == {"MAILER_A", "MAILER_B_C", "MAILER_D", "PROBE_E"}
    assert set(NAME.findall(sample)) == {"MAILER_A", "MAILER_B_C", "MAILER_D", "PROBE_E", "MAILER_F", "PROBE_*"}


def test_every_variable_has_a_row_in_a_readme_table():
    assert sorted(set(VARIABLES) - _table_variables(README)) == []


def test_every_variable_the_readme_names_exists():
    # MAILER_TEST_* choose what the test suite runs against; the service never reads them.
    named = {n for n in NAME.findall(README) if not n.startswith("MAILER_TEST_")}
    families = {n for n in named if n.endswith("*")}
    assert sorted(named - families - set(VARIABLES)) == []
    assert sorted(f for f in families if not any(v.startswith(f[:-1]) for v in VARIABLES)) == []
