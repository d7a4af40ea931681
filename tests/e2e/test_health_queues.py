"""/healthz counts every queued task, at every priority step of the Redis transport.

The detail pass is sent at priority 9, which kombu keeps in a list of its own
("gpu\\x06\\x169"); a count of the "gpu" list alone said 0 while detail passes waited.
Real redis-server and Celery's own send_task; the messages are removed afterwards.
"""
from __future__ import annotations

import pytest
import redis
from kombu.transport.redis import PRIORITY_STEPS, Channel

from brainai_site.celery import app


@pytest.mark.django_db
def test_healthz_counts_tasks_waiting_at_a_low_priority(redis_server, client):
    before = client.get("/healthz").json()["broker"]["queued"]
    app.send_task("workers.tasks.analyze_detail", args=[987654, [1]], priority=9)
    app.send_task("workers.tasks.analyze_study", args=[987654])
    try:
        after = client.get("/healthz").json()["broker"]["queued"]
        assert after["gpu"] == before["gpu"] + 2
        assert after["llm"] == before["llm"] and after["default"] == before["default"]
    finally:
        broker = redis.Redis.from_url(redis_server)
        for key in [f"gpu{Channel.sep}{step}" if step else "gpu" for step in PRIORITY_STEPS]:
            for message in broker.lrange(key, 0, -1):
                if b"987654" in message:
                    broker.lrem(key, 0, message)
