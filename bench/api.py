"""API latency: GET /api/v1/reports/{id}/ (and the list) over HTTP against gunicorn.

Run after bench/pipeline.py (it reuses var/bench/ and its 200-slice report), or let
bench/pipeline.py call it. Prints a table and a JSON line last. Target (not a test):
report detail median < 100 ms.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stack  # noqa: E402

REQUESTS = 60


def _get(url: str, token: str) -> float:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}", "Accept": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        assert response.status == 200
    return 1000 * (time.perf_counter() - start)


def measure(env: dict, report_id: int) -> dict:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.filter(is_superuser=True).first()
    token = Token.objects.get_or_create(user=user)[0].key
    base = _stack.start_gunicorn(env)
    out = {}
    for name, path in (("report_detail", f"/api/v1/reports/{report_id}/"), ("report_list", "/api/v1/reports/")):
        for _ in range(5):
            _get(base + path, token)  # warm-up
        times = sorted(_get(base + path, token) for _ in range(REQUESTS))
        out[name] = {"n": REQUESTS, "median_ms": round(statistics.median(times), 1),
                     "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1), "max_ms": round(times[-1], 1)}
    return out


def print_table(result: dict) -> None:
    print(f"{'endpoint':<16}{'n':>5}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    for name, r in result.items():
        print(f"{name:<16}{r['n']:>5}{r['median_ms']:>12}{r['p95_ms']:>10}{r['max_ms']:>10}")


def main() -> None:
    env = _stack.environment(fresh=False)
    if not (_stack.WORK / "bench.sqlite3").exists() and "BENCH_DATABASE_URL" not in env:
        sys.exit("run bench/pipeline.py first (it creates the 200-slice study this measures)")
    state = json.loads((_stack.WORK / "state.json").read_text())
    env.update(state["env"])
    _stack.activate(env)
    result = measure(env, state["report_id"])
    print_table(result)
    print(json.dumps({"bench": "api", **result}))


if __name__ == "__main__":
    main()
