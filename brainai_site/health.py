"""/healthz: database, broker and model, as JSON; 200 when all are fine, else 503.

Open without login so load balancers and compose health checks can call it; it tells
nothing about patients.
"""
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu.transport.redis import PRIORITY_STEPS, Channel


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True, "vendor": connection.vendor}


def _broker() -> dict:
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
    client.ping()
    # kombu keeps one list per priority step ("gpu", then "gpu\x06\x163" ... "gpu\x06\x169");
    # the detail pass waits at step 9, so counting "gpu" alone would miss it.
    queues = {q: sum(client.llen(f"{q}{Channel.sep}{step}" if step else q) for step in PRIORITY_STEPS)
              for q in ("gpu", "llm", "default")}
    return {"ok": True, "queued": queues}


def _model() -> dict:
    from ml.model import registry

    info = registry.get(settings.BRAINAI_MODEL)
    if not info.model_file.is_file():
        raise FileNotFoundError(f"model weights missing: {info.model_file.name}")
    return {"ok": True, "name": info.name, "version": info.version}


@login_not_required
@never_cache
@require_GET
def healthz(request):
    checks = {}
    for name, probe in (("database", _database), ("broker", _broker), ("model", _model)):
        start = time.perf_counter()
        try:
            checks[name] = probe()
        except Exception as exc:  # a health probe reports every failure, it never raises
            checks[name] = {"ok": False, "error": type(exc).__name__}
        checks[name]["ms"] = round(1000 * (time.perf_counter() - start), 1)
    ok = all(c["ok"] for c in checks.values())
    return JsonResponse({"status": "ok" if ok else "degraded", **checks}, status=200 if ok else 503)
