"""An on-prem server speaking the OpenAI chat-completions API (vLLM, Ollama, llama.cpp).

Plain httpx, no SDK: one ``POST {base}/chat/completions`` per call. ``base`` is
BRAINAI_OPENAI_BASE_URL as the OpenAI SDKs take it (``http://vllm:8000/v1``); a bare
host (``http://vllm:8000``) gets ``/v1`` added. Proxy variables from the environment are
ignored (``trust_env=False``): the request goes straight to the on-prem server.
"""
from __future__ import annotations

import base64
import re
from urllib.parse import urlsplit

import httpx

from llm.config import LLMConfig
from llm.prompt import Prompt
from llm.provider import (OutputError, ProviderError, ProviderTimeout, Reply,
                          TransientError)

TEMPERATURE = 0.2
MAX_TOKENS = 512
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)  # reasoning models


def chat_completions_url(base_url: str) -> str:
    """``http://h:8000/v1`` -> ``http://h:8000/v1/chat/completions`` (``/v1`` added to a bare host)."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


class OpenAICompatProvider:
    """Sends prompts to an OpenAI-compatible chat-completions endpoint.

    Args:
        config: needs openai_base_url and openai_model.
    """

    name = "openai"

    def __init__(self, config: LLMConfig):
        self.model = config.openai_model or ""
        self.url = chat_completions_url(config.openai_base_url or "")
        self._client = httpx.Client(timeout=config.timeout_s, trust_env=False,
                                    follow_redirects=False)

    def generate(self, prompt: Prompt, image_png: bytes | None, timeout_s: float) -> Reply:
        """See :class:`llm.provider.Provider`."""
        user: str | list[dict] = prompt.user
        if image_png is not None:
            data_url = "data:image/png;base64," + base64.b64encode(image_png).decode("ascii")
            user = [{"type": "text", "text": prompt.user},
                    {"type": "image_url", "image_url": {"url": data_url}}]
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": prompt.system},
                         {"role": "user", "content": user}],
            "temperature": TEMPERATURE,
            "max_tokens": MAX_TOKENS,
            "n": 1,
            "stream": False,
        }
        try:
            response = self._client.post(self.url, json=body, timeout=httpx.Timeout(timeout_s))
        except httpx.TimeoutException:
            raise ProviderTimeout(f"gave no answer within {timeout_s:.1f} s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"could not be reached ({type(exc).__name__})",
                                 code="connection_error") from None
        status = response.status_code
        if status == 429:
            raise TransientError("answered HTTP 429", code="rate_limited",
                                 retry_after=_retry_after(response.headers.get("retry-after")))
        if status == 408 or 500 <= status < 600:
            raise TransientError(f"answered HTTP {status}", code="http_error")
        if status != 200:
            raise ProviderError(f"answered HTTP {status}", code="http_error")
        try:
            data = response.json()
            choice = data["choices"][0]
            content = choice.get("message", {}).get("content")
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise OutputError("sent a response that is not a chat completion") from None
        if finish == "content_filter":
            raise OutputError("withheld the answer (finish_reason content_filter)", code="blocked")
        text = _text(content)
        if not text.strip():
            raise OutputError("answered with no text", code="empty")
        model = data.get("model") if isinstance(data.get("model"), str) else None
        return Reply(text=text, model=model)

    def close(self) -> None:
        self._client.close()


def _text(content) -> str:
    """message.content is a string, or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content
                          if isinstance(p, dict) and p.get("type") == "text"
                          and isinstance(p.get("text"), str))
    if not isinstance(content, str):
        return ""
    return _THINK.sub("", content)


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignore, use our own backoff
    return seconds if seconds is not None and 0 <= seconds <= 600 else None
