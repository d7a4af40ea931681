"""Sending tasks to the broker after the transaction commits.

Tasks are sent by name, so scans/ never imports workers/ (data flows one way).
If the broker is down the rows are already committed: the study waits in its current
status and ``manage.py requeue`` (also run when a worker starts) sends the task again.
"""
from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

ANALYZE_STUDY = "workers.tasks.analyze_study"
EXPLAIN_REPORT = "workers.tasks.explain_report"
FINALIZE_REPORT = "workers.tasks.finalize_report"
ANALYZE_DETAIL = "workers.tasks.analyze_detail"

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
