"""The Celery app of bench/priority_lanes.py's "queues" variant: the real app, with the
Redis transport's queue order taken from BENCH_QUEUE_ORDER (round_robin, the kombu
default, or priority: the -Q order, never rotated). Bench-only: the product uses one
gpu queue with priority steps (scans.services.queue, docs/operations.md "Priority lanes").

``celery -A bench.lanes_worker worker -Q gpu.urgent,gpu,gpu.research,llm,default``
"""
from __future__ import annotations

import os

from brainai_site.celery import app

_order = os.environ.get("BENCH_QUEUE_ORDER", "")
if _order:
    app.conf.broker_transport_options = {**(app.conf.broker_transport_options or {}), "queue_order_strategy": _order}
