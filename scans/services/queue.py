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
SEND_NOTIFICATION = "workers.tasks.send_notification"

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


# --- priority lanes (issue #20) ------------------------------------------------------------
# The gpu queue holds three lanes, one Redis priority step each: the Redis transport keeps
# a list per step (``gpu``, ``gpu\x06\x163``, ...) and a worker's BRPOP names them in step
# order, so it always takes from the first non-empty one (docs/operations.md, "Priority
# lanes", has the measurement that chose this over one queue per lane). The detail pass
# (scans.services.detail) is step 9, after every lane.
GPU_QUEUE = "gpu"
LANES = ("urgent", "routine", "research")  # scans.models.Priority values, in the order served
LANE_STEP = {"urgent": 0, "routine": 3, "research": 6}
DETAIL_STEP = 9


def lane_step(priority: str) -> int:
    """The Redis priority step of a lane (a scans.models.Priority value)."""
    return LANE_STEP[str(priority)]


def _step_keys(channel, queue: str = GPU_QUEUE) -> dict[int, str]:
    return {step: f"{queue}{channel.sep}{step}" if step else queue for step in channel.priority_steps}


def lane_lengths() -> dict[str, int] | None:
    """Messages waiting in each lane of the gpu queue, from Redis: ``{"urgent": n,
    "routine": n, "research": n, "detail": n}`` (taken but unacknowledged ones are not
    counted). None when the broker is unreachable (never an empty dict)."""
    from brainai_site.celery import app

    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            channel = conn.default_channel
            keys = _step_keys(channel)
            lanes = {**LANE_STEP, "detail": DETAIL_STEP}
            with channel.client.pipeline() as pipe:
                for lane in lanes:
                    pipe.llen(keys[channel.priority(lanes[lane])])
                sizes = pipe.execute()
    except (BrokerError, RedisError, OSError) as exc:
        logger.error("broker unreachable, cannot count the lanes (%s)", type(exc).__name__)
        return None
    return {lane: int(size) for lane, size in zip(lanes, sizes)}


def withdraw(task_name: str, first_arg, queue: str = GPU_QUEUE) -> int | None:
    """Take every waiting (not yet taken) message of ``task_name(first_arg, ...)`` out of
    ``queue``, any step; how many were removed, None when the broker is unreachable.
    A message a worker pops meanwhile is not removed (LREM finds nothing) and runs."""
    from brainai_site.celery import app

    removed = 0
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            channel = conn.default_channel
            client = channel.client
            for key in _step_keys(channel, queue).values():
                for raw in client.lrange(key, 0, -1):
                    if _task_key(raw) == (task_name, first_arg):
                        removed += int(client.lrem(key, 1, raw))
    except (BrokerError, RedisError, OSError) as exc:
        logger.error("broker unreachable, %s(%s) not withdrawn (%s)", task_name, first_arg, type(exc).__name__)
        return None
    return removed


def workers_alive(timeout: float = 1.0) -> list[str] | None:
    """Hostnames of the Celery workers that answer a ping within ``timeout`` seconds
    (sorted; [] when none does); None when the broker is unreachable. Never waits longer
    than one connection try and the timeout."""
    from brainai_site.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            replies = app.control.inspect(timeout=timeout, connection=conn).ping() or {}
    except (BrokerError, RedisError, OSError) as exc:
        logger.error("broker unreachable, cannot ping the workers (%s)", type(exc).__name__)
        return None
    return sorted(replies)


def urgent_waiting() -> bool:
    """Whether an urgent study's analysis waits in the gpu queue; asked by the worker
    before each batch of a non-urgent study (scans.services.priority.pause_point), so it
    is one LLEN and says False, quietly, when the broker cannot be read."""
    from brainai_site.celery import app

    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            channel = conn.default_channel
            return bool(channel.client.llen(_step_keys(channel)[channel.priority(LANE_STEP["urgent"])]))
    except (BrokerError, RedisError, OSError) as exc:
        logger.debug("broker unreachable, urgent lane not read (%s)", type(exc).__name__)
        return False


# Moves one message (found by its task id) from wherever it is in a list to the end BRPOP
# takes next; atomic, so a message pushed meanwhile by another sender keeps its place.
_TO_FRONT = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #items do
  if string.find(items[i], ARGV[1], 1, true) then
    redis.call('LREM', KEYS[1], 1, items[i])
    redis.call('RPUSH', KEYS[1], items[i])
    return 1
  end
end
return 0
"""


def send_first(task_name: str, *args, priority: int, queue: str = GPU_QUEUE) -> bool:
    """Publish now at the head of its lane (its priority step of ``queue``), not the end:
    a study that gave way to urgent work goes on before the routine studies queued after
    it. False when the broker is unreachable; True also when the message was taken before
    it could be moved (it runs either way)."""
    from brainai_site.celery import app

    task_id = str(uuid.uuid4())
    try:
        app.send_task(task_name, args=list(args), task_id=task_id, retry=True, retry_policy=_RETRY_POLICY,
                      priority=priority)
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0.1, interval_step=0.1)
            channel = conn.default_channel
            channel.client.eval(_TO_FRONT, 1, _step_keys(channel, queue)[channel.priority(priority)], task_id)
    except (BrokerError, RedisError, OSError) as exc:
        logger.error("broker unreachable, %s%s not queued first (%s); `manage.py requeue` will send it",
                     task_name, tuple(args), type(exc).__name__)
        return False
    return True
