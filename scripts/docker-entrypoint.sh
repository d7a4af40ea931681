#!/bin/sh
# One image, several commands (docker-compose.yml picks one per service).
set -e
case "${1:-web}" in
  web)
    exec gunicorn brainai_site.wsgi:application --bind 0.0.0.0:8000 \
      --workers "${WEB_CONCURRENCY:-3}" --timeout 120 --access-logfile - ;;
  worker-gpu)
    # One study at a time, in one pool process that loads the model on its first task and
    # keeps it warm (prefork, not solo: Celery enforces time limits only with a pool).
    exec celery -A brainai_site worker -Q gpu --pool prefork --concurrency 1 --prefetch-multiplier 1 \
      -n gpu@%h --loglevel INFO ;;
  worker-llm)
    # Explanations wait on the network, so several at once; also the default queue.
    exec celery -A brainai_site worker -Q llm,default --pool prefork \
      --concurrency "${LLM_CONCURRENCY:-4}" -n llm@%h --loglevel INFO ;;
  worker-outbound)
    # Results back to the PACS (workers.tasks.send_results): waits on the network, never on the GPU.
    exec celery -A brainai_site worker -Q outbound --pool prefork \
      --concurrency "${OUTBOUND_CONCURRENCY:-2}" -n outbound@%h --loglevel INFO ;;
  beat)
    # The periodic sweep (workers.tasks.sweep_stalled): one beat per deployment; a lock
    # in Redis keeps a second one from sending twice.
    exec celery -A brainai_site beat --schedule /tmp/celerybeat-schedule --loglevel INFO ;;
  migrate)
    exec python manage.py migrate --noinput ;;
  manage)
    shift; exec python manage.py "$@" ;;
  *)
    exec "$@" ;;
esac
