"""A fake Gemini API: ``POST /v1beta/models/{model}:generateContent`` on loopback.

Modes (see also :mod:`tests.fakes.server`):
"ok" (an answer that agrees with the label in the prompt), "contradict", "empty"
(a candidate with no text), "429", "500", "503", "400", "malformed" (truncated JSON),
"blocked" (promptFeedback.blockReason SAFETY), "blocked_finish" (finishReason SAFETY).
"""
from __future__ import annotations

import base64
import re
from typing import Any

from tests.fakes.answers import consistent_answer, contradicting_answer
from tests.fakes.server import Answer, CapturedRequest, FakeServer

_PATH = re.compile(r"^/(v1beta|v1)/models/([A-Za-z0-9._:-]+):generateContent$")
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class FakeGemini(FakeServer):
    """Fake Gemini server.

    Args:
        api_key: when given, requests without this ``x-goog-api-key`` get a 401.
        (others as :class:`tests.fakes.server.FakeServer`)
    """

    def __init__(self, *modes, api_key: str | None = None, **kwargs):
        super().__init__(*modes, **kwargs)
        self.api_key = api_key

    def answer(self, mode: str, request: CapturedRequest, body: Any) -> Answer:
        match = _PATH.match(request.path)
        if not match:
            return _error(404, f"no route for {request.path}")
        if self.api_key is not None and request.headers.get("x-goog-api-key") != self.api_key:
            return _error(401, "API key not valid.")
        model = match.group(2)
        prompt = prompt_text(body)
        if mode == "ok":
            return _text(consistent_answer(prompt), model)
        if mode == "contradict":
            return _text(contradicting_answer(prompt), model)
        if mode == "empty":
            return self.json_answer(200, {"candidates": [{"content": {"role": "model", "parts": []},
                                                          "finishReason": "STOP"}],
                                          "modelVersion": model})
        if mode in ("429", "500", "503", "400"):
            return _error(int(mode), "fake failure")
        if mode == "malformed":
            return 200, {"Content-Type": "application/json"}, b'{"candidates": [{"content": {"parts'
        if mode == "blocked":
            return self.json_answer(200, {"promptFeedback": {"blockReason": "SAFETY"},
                                          "modelVersion": model})
        if mode == "blocked_finish":
            return self.json_answer(200, {"candidates": [{
                "finishReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                   "probability": "HIGH", "blocked": True}]}],
                "modelVersion": model})
        raise ValueError(f"FakeGemini has no mode {mode!r}")

    def images(self) -> list[bytes]:
        """The inline images of every captured request, decoded."""
        out = []
        for request in self.requests:
            for content in request.json().get("contents", []):
                for part in content.get("parts", []):
                    data = (part.get("inlineData") or part.get("inline_data") or {}).get("data")
                    if data:
                        out.append(_b64decode(data))
        return out


def prompt_text(body: Any) -> str:
    """All text parts of a generateContent request (system instruction included)."""
    if not isinstance(body, dict):
        return ""
    texts = []
    for content in [body.get("systemInstruction") or {}] + list(body.get("contents") or []):
        for part in content.get("parts") or []:
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


def _b64decode(data: str) -> bytes:
    """Proto JSON bytes: standard or URL-safe base64 (google-genai sends the latter)."""
    data = data.replace("-", "+").replace("_", "/")
    return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)


def _text(text: str, model: str) -> Answer:
    return FakeServer.json_answer(200, {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 400, "candidatesTokenCount": 90},
        "modelVersion": model,
    })


def _error(status: int, message: str) -> Answer:
    return FakeServer.json_answer(status, {"error": {
        "code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}})
