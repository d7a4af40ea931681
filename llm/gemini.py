"""Gemini through the google-genai client.

The client is pointed at ``config.gemini_base_url`` when set (a proxy, or the fake
server in the tests) and told not to retry: :mod:`llm.explain` owns retries and the
time budget. The API version is pinned so the request path is always
``{base}/v1beta/models/{model}:generateContent``.
"""
from __future__ import annotations

import logging

import httpx
from google import genai
from google.genai import errors, types

from llm.config import LLMConfig
from llm.prompt import Prompt
from llm.provider import (OutputError, ProviderError, ProviderTimeout, Reply,
                          TransientError)

try:  # google-genai sends through httpx2 (a fork of httpx) when it is installed
    import httpx2
    _TIMEOUTS: tuple[type[BaseException], ...] = (httpx.TimeoutException, httpx2.TimeoutException)
    _TRANSPORT: tuple[type[BaseException], ...] = (httpx.TransportError, httpx2.TransportError)
except ImportError:  # pragma: no cover - depends on the installed google-genai
    _TIMEOUTS = (httpx.TimeoutException,)
    _TRANSPORT = (httpx.TransportError,)

logger = logging.getLogger(__name__)

API_VERSION = "v1beta"
TEMPERATURE = 0.2
# finishReason values meaning the answer was withheld rather than finished.
_BLOCKED_FINISH = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                   "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"}


class GeminiProvider:
    """Sends prompts to Gemini's generateContent.

    Args:
        config: needs gemini_api_key and gemini_model; gemini_base_url is optional.
    """

    name = "gemini"

    def __init__(self, config: LLMConfig):
        self.model = config.gemini_model
        http_options = types.HttpOptions(
            base_url=config.gemini_base_url or None,
            api_version=API_VERSION,
            timeout=_ms(config.timeout_s),
            retry_options=None,  # one request per call; explain() decides on retries
        )
        self._client = genai.Client(api_key=config.gemini_api_key, vertexai=False,
                                    http_options=http_options)

    def generate(self, prompt: Prompt, image_png: bytes | None, timeout_s: float) -> Reply:
        """See :class:`llm.provider.Provider`."""
        parts = [types.Part.from_text(text=prompt.user)]
        if image_png is not None:
            parts.append(types.Part.from_bytes(data=image_png, mime_type="image/png"))
        config = types.GenerateContentConfig(
            system_instruction=prompt.system,
            temperature=TEMPERATURE,
            candidate_count=1,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            http_options=types.HttpOptions(timeout=_ms(timeout_s)),
        )
        try:
            response = self._client.models.generate_content(
                model=self.model, contents=[types.Content(role="user", parts=parts)],
                config=config)
        except errors.APIError as exc:
            raise _http_error(exc.code, exc.status) from None
        except _TIMEOUTS:
            raise ProviderTimeout(f"gave no answer within {timeout_s:.1f} s") from None
        except _TRANSPORT as exc:
            raise TransientError(f"could not be reached ({type(exc).__name__})",
                                 code="connection_error") from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # JSONDecodeError, pydantic ValidationError, or JSON of the wrong shape that
            # trips the client's converters
            raise OutputError(f"sent a response that is not valid JSON for generateContent "
                              f"({type(exc).__name__})") from None
        return _reply(response)

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing is best effort; the request already has its result
            logger.debug("closing the google-genai client failed", exc_info=True)


def _http_error(code: int | None, status: str | None) -> ProviderError:
    what = f"answered HTTP {code}" + (f" {status}" if status else "")
    if code == 429:
        return TransientError(what, code="rate_limited")
    if code is not None and (code == 408 or 500 <= code < 600):
        return TransientError(what, code="http_error")
    return ProviderError(what, code="http_error")


def _reply(response) -> Reply:
    """The text of the first candidate, or the reason there is none."""
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason:
        raise OutputError(f"blocked the prompt (blockReason {_name(feedback.block_reason)})",
                          code="blocked")
    candidates = response.candidates or []
    if not candidates:
        raise OutputError("answered with no candidates", code="empty")
    candidate = candidates[0]
    finish = _name(candidate.finish_reason) if candidate.finish_reason else None
    if finish in _BLOCKED_FINISH:
        raise OutputError(f"withheld the answer (finishReason {finish})", code="blocked")
    parts = candidate.content.parts if candidate.content and candidate.content.parts else []
    text = "".join(p.text for p in parts if p.text and not p.thought)
    if not text.strip():
        raise OutputError("answered with no text" + (f" (finishReason {finish})" if finish else ""),
                          code="empty")
    return Reply(text=text, model=response.model_version)


def _name(value) -> str:
    return str(getattr(value, "value", value))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
