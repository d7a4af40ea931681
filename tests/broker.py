"""Point this test process's Celery client at another broker, and back.

Celery keeps its connection pools in kombu's process-wide registry, keyed by broker URL;
closing a pool there without forgetting it would leave every later send in the test
session failing with "Acquire on closed pool". ``broker_at`` clears the registry on the
way in and on the way out, so the next send opens fresh connections to whichever URL is
configured.
"""
from __future__ import annotations

import socket
from contextlib import contextmanager


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _forget_connections(app) -> None:
    from kombu import pools

    pools.reset()  # closes every pooled connection and empties the registry
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker_at(url: str):
    """Send this process's tasks to ``url`` inside the block (a dead port: the broker is down)."""
    from brainai_site.celery import app

    old = app.conf.broker_url
    _forget_connections(app)
    app.conf.broker_url = url
    try:
        yield
    finally:
        _forget_connections(app)
        app.conf.broker_url = old
