"""docker-compose.yml: the consumer and the console share one image and one data volume; the console
only runs on demand (profile console) with a terminal; Postgres and Redis come with profile scale."""
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_profiles(compose):
    services = compose["services"]
    assert set(services) == {"consumer", "api", "console", "postgres", "redis"}
    assert "profiles" not in services["api"]  # `docker compose up` starts the API too
    assert "profiles" not in services["consumer"]  # `docker compose up` starts it
    assert services["console"]["profiles"] == ["console"]  # ... and not the console
    assert services["postgres"]["profiles"] == ["scale"] and services["redis"]["profiles"] == ["scale"]


def test_consumer(compose):
    consumer = compose["services"]["consumer"]
    assert consumer["build"] == "."
    assert "command" not in consumer  # the image's CMD: mailer consumer
    assert "data:/data" in consumer["volumes"]
    env = consumer["environment"]
    for name in ("MAILER_GATEWAY", "PROBE_URL", "PROBE_TOKEN", "SMSAERO_EMAIL", "SMSAERO_API_KEY",
                 "SMSAERO_URL", "SMSAERO_SIGN", "MAILER_SMTP_PASSWORD", "MAILER_TZ"):
        assert name in env and env[name] is None  # passed through from the host, never written here
    assert env["MAILER_METRICS_PORT"] == "9100" and env["MAILER_METRICS_ADDR"] == "0.0.0.0"
    assert "9100" in consumer["expose"]
    assert any(str(p).endswith(":9100") and str(p).startswith("127.0.0.1:") for p in consumer["ports"])
    assert env["MAILER_DB_URL"].endswith("sqlite:////data/mailer.db}")
    assert env["MAILER_QUEUE_URL"].endswith("sqlite:////data/mailer-queue.db}")
    # The scale services are optional dependencies: absent unless the profile is on.
    for name in ("postgres", "redis"):
        assert consumer["depends_on"][name] == {"condition": "service_healthy", "required": False}


def test_console_shares_image_and_volume(compose):
    consumer, console = compose["services"]["consumer"], compose["services"]["console"]
    assert console["command"] == ["mailer", "console"]
    assert console["stdin_open"] is True and console["tty"] is True
    assert console["image"] == consumer["image"] and console["build"] == consumer["build"]
    assert console["volumes"] == consumer["volumes"] == ["data:/data"]
    assert console["environment"]["MAILER_DB_URL"] == consumer["environment"]["MAILER_DB_URL"]
    assert "MAILER_METRICS_PORT" not in console["environment"]
    assert console["healthcheck"] == {"disable": True}
    assert "data" in compose["volumes"]


def test_api_shares_image_and_volume_and_listens_on_loopback_of_the_host(compose):
    consumer, api = compose["services"]["consumer"], compose["services"]["api"]
    assert api["command"] == ["mailer", "api", "--host", "0.0.0.0", "--port", "8000"]
    assert api["image"] == consumer["image"] and api["build"] == consumer["build"]
    assert api["volumes"] == ["data:/data"]
    assert api["environment"]["MAILER_DB_URL"] == consumer["environment"]["MAILER_DB_URL"]
    assert api["environment"]["PROBE_TOKEN"] is None  # test sends go through the configured gateway
    assert "8000" in api["expose"]
    assert api["ports"] == ["127.0.0.1:${MAILER_API_HOST_PORT:-8000}:8000"]
    assert "/openapi.json" in " ".join(api["healthcheck"]["test"])
    for name in ("postgres", "redis"):
        assert api["depends_on"][name] == {"condition": "service_healthy", "required": False}
    assert "COPY api ./api" in (ROOT / "Dockerfile").read_text()


def test_scale_profile(compose):
    postgres, redis = compose["services"]["postgres"], compose["services"]["redis"]
    assert postgres["image"] == "postgres:16-alpine"
    assert postgres["environment"] == {"POSTGRES_USER": "mailer", "POSTGRES_PASSWORD": "mailer",
                                       "POSTGRES_DB": "mailer"}
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert redis["image"] == "redis:7-alpine"
    assert "ping" in redis["healthcheck"]["test"]
    # The documented URLs name these services and the credentials above.
    text = (ROOT / "docker-compose.yml").read_text()
    assert "MAILER_DB_URL=postgresql://mailer:mailer@postgres/mailer" in text
    assert "MAILER_QUEUE_URL=redis://redis:6379/0" in text


def test_dockerfile_matches(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["mailer", "consumer"]' in dockerfile  # the consumer's default command
    assert "/data" in dockerfile and "MAILER_DB_URL=sqlite:////data/mailer.db" in dockerfile
