"""A scriptable HTTP server on loopback, the base of the fake LLM servers.

Each request takes the next mode from a queue (then ``default_mode``); a subclass turns
the mode into an answer. Every request is captured raw (method, path, headers, body) so
tests can assert what left the process. Shared modes:

- "hang": read the request, answer nothing until the server stops (or ``hang_s``);
- "drip": send a 200 with a long Content-Length, then one byte every 0.1 s (a per-read
  socket timeout never fires; only a total deadline ends it);
- "reset": close the connection without an answer;
- a callable ``(request, json_body) -> (status, headers, body_bytes)`` for anything else.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass(frozen=True)
class CapturedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def raw(self) -> bytes:
        """Everything the client sent: request line, headers and body."""
        head = f"{self.method} {self.path}\n" + "".join(
            f"{k}: {v}\n" for k, v in self.headers.items())
        return head.encode("latin-1", "replace") + b"\n" + self.body

    def json(self) -> Any:
        return json.loads(self.body)


Answer = tuple[int, dict[str, str], bytes]


class FakeServer:
    """Base class; subclasses implement :meth:`answer`.

    Use as a context manager (``with FakeGemini() as fake: fake.base_url``) or call
    :meth:`start`, which returns ``(base_url, bodies)``; ``bodies`` is the live list of
    raw request bodies (``requests`` has the full captured requests).

    Args:
        *modes: answers for the first requests, in order; later ones get ``default_mode``.
        default_mode: usually "ok".
        hang_s: the longest a "hang" or "drip" answer is kept open.
    """

    def __init__(self, *modes: str | Callable, default_mode: str | Callable = "ok",
                 hang_s: float = 30.0):
        self.requests: list[CapturedRequest] = []
        self.bodies: list[bytes] = []
        self.modes_used: list[str] = []
        self.default_mode = default_mode
        self.hang_s = hang_s
        self._queue = list(modes)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> tuple[str, list[bytes]]:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self.base_url, self.bodies

    def stop(self) -> None:
        self._stopping.set()  # releases "hang" and "drip" answers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- scripting ---------------------------------------------------------------

    def queue(self, *modes: str | Callable) -> None:
        """Add answers for the next requests."""
        with self._lock:
            self._queue.extend(modes)

    def _next_mode(self) -> str | Callable:
        with self._lock:
            mode = self._queue.pop(0) if self._queue else self.default_mode
            self.modes_used.append(mode if isinstance(mode, str) else "callable")
            return mode

    def answer(self, mode: str, request: CapturedRequest, body: Any) -> Answer:
        """Turn a mode into (status, headers, body). Subclasses override."""
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------

    @staticmethod
    def json_answer(status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
        return status, {"Content-Type": "application/json", **(headers or {})}, \
            json.dumps(payload).encode()


def _make_handler(fake: FakeServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out at once

        def do_POST(self):  # noqa: N802 (http.server naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = CapturedRequest("POST", self.path, dict(self.headers.items()), body)
            with fake._lock:
                fake.requests.append(request)
                fake.bodies.append(body)
            mode = fake._next_mode()
            if mode == "hang":
                fake._stopping.wait(fake.hang_s)
                self.close_connection = True
                return
            if mode == "reset":
                self.close_connection = True
                return
            if mode == "drip":
                self._drip()
                return
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            if callable(mode):
                status, headers, payload = mode(request, parsed)
            else:
                status, headers, payload = fake.answer(mode, request, parsed)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST

        def _drip(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            give_up = time.monotonic() + fake.hang_s
            try:
                while not fake._stopping.is_set() and time.monotonic() < give_up:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    fake._stopping.wait(0.1)
            except OSError:  # the client gave up: that is the point
                pass
            self.close_connection = True

        def log_message(self, *args):  # keep test output quiet
            pass

    return Handler
