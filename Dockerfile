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
