# The consumer by default; `docker compose run --rm console` attaches the console to the same volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MAILER_DB_URL=sqlite:////data/mailer.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY app.py models.py ./
COPY migrations ./migrations
COPY domain ./domain
COPY service ./service
COPY engine ./engine
COPY tasks ./tasks
COPY ops ./ops
COPY console ./console
COPY api ./api
COPY simulator ./simulator
# The project itself, with its PostgreSQL/Redis drivers; versions are bounded in pyproject.toml.
# hadolint ignore=DL3013
RUN pip install ".[scale]" \
    && useradd --create-home --uid 10001 mailer \
    && mkdir -p /data \
    && chown mailer:mailer /data

USER 10001
# 9100: the consumer's metrics; 8000: the HTTP API (`mailer api`, the compose file's api service)
EXPOSE 9100 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["mailer", "health"]
CMD ["mailer", "consumer"]
