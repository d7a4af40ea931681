# One image for every BrainAI service; docker-compose.yml picks the command:
#   web | worker-gpu | worker-llm | migrate | manage <command>
# TF_VARIANT=cpu (default) installs tensorflow-cpu from requirements.txt;
# TF_VARIANT=gpu swaps in tensorflow[and-cuda] of the same version for the GPU worker.
FROM python:3.11-slim-bookworm

ARG TF_VARIANT=cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    BRAINAI_VAR_DIR=/data \
    BRAINAI_MEDIA_ROOT=/data/media \
    BRAINAI_STATIC_ROOT=/app/staticfiles

# pg_dump/pg_restore/psql of the server's major version (manage.py backup and restore;
# compose runs postgres:16, Debian bookworm's own client is 15 and pg_dump refuses a newer
# server): postgresql-client-$PG_MAJOR from the PostgreSQL project's apt repository (PGDG).
# Keep PG_MAJOR equal to the major of the postgres image in docker-compose.yml
# (tests/scans/test_deploy_files.py checks).
ARG PG_MAJOR=16
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" \
 && apt-get purge -y --auto-remove curl \
 && rm -rf /var/lib/apt/lists/* \
 && pg_dump --version | grep -q " ${PG_MAJOR}\." \
 && pg_restore --version | grep -q " ${PG_MAJOR}\."

WORKDIR /app
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
 && if [ "$TF_VARIANT" = "gpu" ]; then \
      TF_VERSION=$(pip show tensorflow-cpu | sed -n 's/^Version: //p'); \
      pip uninstall -y tensorflow-cpu && pip install --no-cache-dir "tensorflow[and-cuda]==${TF_VERSION}"; \
    fi

COPY . .
# Static files are collected at build time; WhiteNoise serves them from gunicorn.
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-real-secret-key-000000 \
    python manage.py collectstatic --noinput --skip-checks \
 && useradd --create-home --uid 1000 brainai \
 && mkdir -p /data/media && chown -R brainai /data

USER brainai
EXPOSE 8000
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["web"]
