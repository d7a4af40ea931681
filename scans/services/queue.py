"""Sending tasks to the broker after the transaction commits.

Tasks are sent by name, so scans/ never imports workers/ (data flows one way).
If the broker is down the rows are already committed: the study waits in its current
status and the periodic sweep (scans.services.housekeeping, every
BRAINAI_SWEEP_INTERVAL_S), ``manage.py requeue`` or a worker starting sends the task again.
"""
from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from functools import partial

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

ANALYZE_STUDY = "workers.tasks.analyze_study"
EXPLAIN_REPORT = "workers.tasks.explain_report"
FINALIZE_REPORT = "workers.tasks.finalize_report"
ANALYZE_DETAIL = "workers.tasks.analyze_detail"
SEND_RESULTS = "workers.tasks.send_results"

_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0}


def send_now(task_name: str, *args, priority: int | None = None) -> bool:
    """Publish immediately; False (and an error in the log) when the broker is unreachable.

    ``priority``: the Redis transport's step, 0 (default) served first, 9 last.
    """
    from brainai_site.celery import app

    try:
        app.send_task(task_name, args=list(args), retry=True, retry_policy=_RETRY_POLICY, priority=priority)
    except (BrokerError, OSError) as exc:
        logger.error("broker unreachable, %s%s not queued (%s); `manage.py requeue` will send it",
                     task_name, tuple(args), type(exc).__name__)
        return False
    return True


def enqueue(task_name: str, *args, priority: int | None = None) -> None:
    """Publish once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(partial(send_now, task_name, *args, priority=priority))


def _queues() -> set[str]:
    from django.conf import settings

    return {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}


def _task_key(message) -> tuple[str, object] | None:
    """(task name, first argument) of a raw Celery message (protocol 2, JSON body)."""
    try:
        message = json.loads(message) if isinstance(message, (bytes, str)) else message
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return message["headers"]["task"], (args[0] if args else None)
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def in_broker(in_flight_for: float) -> set[tuple[str, object]] | None:
    """What the broker holds: (task name, first argument) of every task waiting in a queue,
    and of every task a worker took less than ``in_flight_for`` seconds ago and has not
    acknowledged yet (older ones belong to a lost worker). None when the broker is
    unreachable. Reads the Redis transport's keys: each queue is a list per priority
    step, taken messages are the ``unacked`` hash, timed in ``unacked_index``.
    """
    from brainai_site.celery import app

    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            channel = conn.default_channel
            client = channel.client
            raw = [m for queue in _queues() for step in channel.priority_steps
                   for m in client.lrange(f"{queue}{channel.sep}{step}" if step else queue, 0, -1)]
            young = {tag for tag, at in client.zrange(channel.unacked_index_key, 0, -1, withscores=True)
                     if at > time.time() - in_flight_for}
            for tag, value in client.hgetall(channel.unacked_key).items():
                if tag in young:
                    raw.append(json.loads(value)[0])
    except (BrokerError, RedisError, OSError) as exc:
        logger.error("broker unreachable, cannot list queued tasks (%s)", type(exc).__name__)
        return None
    return {key for key in map(_task_key, raw) if key is not None}


def broker_lock(name: str, seconds: int) -> bool:
    """Take a lock in the broker that expires by itself after ``seconds``; False when
    someone holds it (or the broker is unreachable). Never released early: it also
    spaces the callers out."""
    from brainai_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            return bool(conn.default_channel.client.set(f"brainai:lock:{name}", uuid.uuid4().hex,
                                                        nx=True, ex=max(int(seconds), 1)))
    except (BrokerError, RedisError, OSError) as exc:
        logger.error("broker unreachable, lock %s not taken (%s)", name, type(exc).__name__)
        return False
