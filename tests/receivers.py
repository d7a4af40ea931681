"""Receivers of notifications on loopback, for tests and benches: a webhook endpoint
(http.server in a thread) that checks each request's HMAC signature itself, and an SMTP
server (aiosmtpd). Both record what arrived and can be stopped and started again on the
same port, to play a receiver that is down.

Nothing here imports our code: the signature check is written from the documented
contract (docs/integration.md "Notifications"), not from scans.services.notifications.
"""
from __future__ import annotations

import email
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.broker import free_port

SIGNATURE_TOLERANCE_S = 300


@dataclass
class Hook:
    """One POST as it arrived."""

    headers: dict
    body: bytes
    signed: bool  # X-BrainAI-Signature matched the HMAC of "<timestamp>.<body>", timestamp recent
    at: float = field(default_factory=time.time)

    @property
    def message(self) -> dict:
        return json.loads(self.body)


def signature_ok(secret: str, headers: dict, body: bytes, now: float | None = None) -> bool:
    """The receiver's check, as documented: recent timestamp, constant-time comparison."""
    timestamp = headers.get("X-BrainAI-Timestamp", "")
    given = headers.get("X-BrainAI-Signature", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > SIGNATURE_TOLERANCE_S:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


class WebhookReceiver:
    """POSTs to ``url`` are recorded in ``hooks``; answers ``status`` (200 unless changed).

    Not listening until ``start()``; ``stop()`` closes the port (connections refused).
    """

    def __init__(self, secret: str, port: int | None = None, status: int = 200):
        self.secret = secret
        self.port = port or free_port()
        self.status = status
        self.hooks: list[Hook] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/brainai-hook"

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.hooks.append(Hook(headers, body, signature_ok(receiver.secret, headers, body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> Counter:
        """How many times each notification_id arrived, among correctly signed requests."""
        with self._lock:
            return Counter(h.message["notification_id"] for h in self.hooks if h.signed)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SmtpReceiver:
    """An SMTP server (aiosmtpd) on loopback; every message taken is in ``messages``."""

    def __init__(self, port: int | None = None, refuse: tuple[str, ...] = ()):
        self.port = port or free_port()
        self.refuse = set(refuse)  # recipients answered 550
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._controller = None

    def start(self) -> "SmtpReceiver":
        from aiosmtpd.controller import Controller

        receiver = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if address in receiver.refuse:
                    return "550 No such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                with receiver._lock:
                    receiver.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
                    receiver.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                return "250 Message accepted"

        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line at INFO
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def ids(self) -> Counter:
        """How many times each notification id (header X-BrainAI-Notification) arrived."""
        with self._lock:
            return Counter(int(m["X-BrainAI-Notification"]) for m in self.messages)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
