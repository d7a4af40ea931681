"""A fake OpenAI-compatible server (vLLM, Ollama, llama.cpp): ``POST /v1/chat/completions``.

Modes (see also :mod:`tests.fakes.server`): "ok", "contradict", "empty", "429"
(with ``Retry-After: 0``), "500", "503", "400", "malformed", "blocked_finish"
(finish_reason content_filter), "think" (an "ok" answer wrapped after a <think> block).
"""
from __future__ import annotations

import base64
from typing import Any

from tests.fakes.answers import consistent_answer, contradicting_answer
from tests.fakes.server import Answer, CapturedRequest, FakeServer


class FakeOpenAI(FakeServer):
    """Fake OpenAI-compatible chat-completions server."""

    def answer(self, mode: str, request: CapturedRequest, body: Any) -> Answer:
        if request.path != "/v1/chat/completions":
            return _error(404, f"no route for {request.path}")
        if not isinstance(body, dict) or not body.get("model") or not body.get("messages"):
            return _error(400, "model and messages are required")
        model = body["model"]
        prompt = prompt_text(body)
        if mode == "ok":
            return _completion(consistent_answer(prompt), model)
        if mode == "think":
            return _completion("<think>label first, then caveats</think>"
                               + consistent_answer(prompt), model)
        if mode == "contradict":
            return _completion(contradicting_answer(prompt), model)
        if mode == "empty":
            return _completion("", model)
        if mode == "blocked_finish":
            return _completion(None, model, finish="content_filter")
        if mode == "429":
            return _error(429, "rate limited", headers={"Retry-After": "0"})
        if mode in ("500", "503", "400"):
            return _error(int(mode), "fake failure")
        if mode == "malformed":
            return 200, {"Content-Type": "application/json"}, b'{"choices": [{"message": '
        raise ValueError(f"FakeOpenAI has no mode {mode!r}")

    def images(self) -> list[bytes]:
        """The data-URL images of every captured request, decoded."""
        out = []
        for request in self.requests:
            for message in request.json().get("messages", []):
                content = message.get("content")
                for part in content if isinstance(content, list) else []:
                    url = (part.get("image_url") or {}).get("url", "")
                    if url.startswith("data:"):
                        out.append(base64.b64decode(url.split(",", 1)[1]))
        return out


def prompt_text(body: dict) -> str:
    texts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p.get("text", "") for p in content if p.get("type") == "text")
    return "\n".join(texts)


def _completion(text: str | None, model: str, finish: str = "stop") -> Answer:
    return FakeServer.json_answer(200, {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 400, "completion_tokens": 90, "total_tokens": 490},
    })


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    return FakeServer.json_answer(status, {"error": {"message": message, "type": "fake",
                                                     "code": status}}, headers)
