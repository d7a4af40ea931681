"""The entry point: one explanation for one finding, never blocking the report.

``explain()`` asks the configured LLM, checks the answer against the label, and falls
back to the offline template when anything goes wrong. Its wall time is bounded by
``config.timeout_s`` (plus the few milliseconds the template takes): the LLM conversation
runs in a daemon thread that is abandoned at the deadline, so even a server that
trickles bytes forever, or a DNS lookup that hangs, cannot hold a report back.

Retries, all inside the one time budget:
- 429, 5xx, 408 and refused connections: up to ``config.max_attempts`` requests, with
  exponential backoff and jitter (and a server's Retry-After when it sends one);
- an answer that is blocked, empty, malformed or fails validation: one more request
  (with a note saying what was wrong), then the template;
- a timeout or any other error: straight to the template.
"""
from __future__ import annotations

import functools
import logging
import random
import threading
import time
from dataclasses import dataclass

from llm.config import LLMConfig
from llm.prompt import PROMPT_VERSION, Prompt, build_prompt
from llm.provider import (OutputError, Provider, ProviderError, ProviderTimeout,
                          TransientError, clean_png)
from llm.schema import Explanation, StudyFinding
from llm.template import TEMPLATE_MODEL, TEMPLATE_VERSION, render
from llm.validate import find_problem, with_notice

logger = logging.getLogger(__name__)

MIN_ATTEMPT_S = 0.2  # not worth starting a request with less time than this left
_MARGIN_S = 0.05  # requests time out this much before the deadline, so they report it


def explain(finding: StudyFinding, config: LLMConfig,
            overlay_png: bytes | None = None) -> Explanation:
    """Explain a finding in clinician-facing words.

    Args:
        finding: the structured result (only whitelisted fields reach the LLM).
        config: provider, model and time budget (see :meth:`LLMConfig.from_env`).
        overlay_png: the heatmap overlay; sent (re-encoded from its pixels) only when
            ``config.send_images`` is on.

    Returns:
        The explanation. When the LLM could not give a usable answer in time it is the
        template's, with ``fallback_reason`` saying why. Provider failures never raise.
    """
    start = time.monotonic()
    if config.provider == "template":
        return _template(finding, start, reason=None, attempts=0)

    deadline = start + config.timeout_s
    conversation = _Conversation(finding, config, overlay_png, deadline)
    worker = threading.Thread(target=conversation.run, name="llm-explain", daemon=True)
    worker.start()
    worker.join(timeout=max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        conversation.abandon()
        reason = (f"timeout: {config.provider} ({config.model}) gave no answer within "
                  f"{config.timeout_s:g} s")
        return _template(finding, start, reason, conversation.attempts)
    if conversation.text is None:
        return _template(finding, start, conversation.failure, conversation.attempts)
    return Explanation(text=conversation.text, provider=config.provider,
                       model=conversation.model, prompt_version=PROMPT_VERSION,
                       latency_ms=_ms_since(start), fallback_reason=None,
                       attempts=conversation.attempts)


@dataclass
class _Conversation:
    """The requests for one explanation; run in a worker thread by explain()."""

    finding: StudyFinding
    config: LLMConfig
    overlay_png: bytes | None
    deadline: float
    attempts: int = 0
    text: str | None = None
    model: str = ""
    failure: str = "provider_error: no answer"

    def __post_init__(self):
        self._abandoned = threading.Event()

    def abandon(self) -> None:
        """Called at the deadline: start no further request or wait."""
        self._abandoned.set()

    def run(self) -> None:
        who = f"{self.config.provider} ({self.config.model})"
        try:
            self._converse(_provider(self.config), who)
        except ProviderTimeout:
            self.failure = f"timeout: {who} gave no answer within {self.config.timeout_s:g} s"
        except ProviderError as exc:
            self.failure = f"{exc.code}: {who} {exc.detail}"
        except Exception as exc:  # a bug or an unexpected client error: still a report
            logger.exception("LLM explanation failed unexpectedly")
            self.failure = f"provider_error: {who} failed ({type(exc).__name__})"
        if self.text is None and not self._abandoned.is_set():
            logger.warning("LLM explanation fell back to the template: %s", self.failure)

    def _converse(self, provider: Provider, who: str) -> None:
        base_prompt = build_prompt(self.finding)
        prompt: Prompt = base_prompt
        image = self._image()
        transient_failures = 0
        output_retry_left = True
        while not self._abandoned.is_set():
            left = self.deadline - time.monotonic() - _MARGIN_S
            if left < MIN_ATTEMPT_S:
                raise ProviderTimeout("no time left for another request")
            self.attempts += 1
            try:
                reply = provider.generate(prompt, image, timeout_s=left)
            except TransientError as exc:
                transient_failures += 1
                if transient_failures >= self.config.max_attempts:
                    raise ProviderError(f"{exc.detail}; gave up after {self.attempts} attempts",
                                        code=exc.code) from None
                self._pause(exc, transient_failures)
                continue
            except OutputError:
                if not output_retry_left:
                    raise
                output_retry_left = False
                prompt = base_prompt
                continue
            problem = find_problem(reply.text, self.finding.label)
            if problem is None:
                self.text = with_notice(reply.text)
                self.model = _model_name(reply.model, provider.model)
                return
            if not output_retry_left:
                raise ProviderError(f"gave an answer that was rejected twice: {problem}",
                                    code="invalid_output")
            output_retry_left = False
            prompt = base_prompt.with_correction(problem)

    def _pause(self, exc: TransientError, failures: int) -> None:
        """Back off before the next request, if the budget allows one after the pause."""
        delay = self.config.backoff_s * (2 ** (failures - 1)) * random.uniform(0.75, 1.25)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        if time.monotonic() + delay + MIN_ATTEMPT_S + _MARGIN_S > self.deadline:
            raise ProviderError(f"{exc.detail}; no time left to retry after "
                                f"{self.attempts} attempts", code=exc.code)
        self._abandoned.wait(delay)

    def _image(self) -> bytes | None:
        if not (self.config.send_images and self.overlay_png):
            return None
        try:
            return clean_png(self.overlay_png)
        except ValueError as exc:
            logger.warning("overlay not sent to the LLM: %s", exc)
            return None


def warm_up(config: LLMConfig) -> None:
    """Import the configured provider's client library ahead of the first explain().

    Importing google-genai takes a second or more on a busy machine; that would come out
    of the first explanation's time budget. Call this when a worker process starts (the
    Celery workers do, on ``worker_process_init``).

    Args:
        config: the configuration the process will use.
    """
    if config.provider == "gemini":
        import llm.gemini  # noqa: F401
    elif config.provider == "openai":
        import llm.openai_compat  # noqa: F401


@functools.lru_cache(maxsize=8)
def _provider(config: LLMConfig) -> Provider:
    """One client per configuration and process, made on first use and kept (its
    connection pool and TLS sessions are reused by later explanations)."""
    if config.provider == "gemini":
        from llm.gemini import GeminiProvider
        return GeminiProvider(config)
    if config.provider == "openai":
        from llm.openai_compat import OpenAICompatProvider
        return OpenAICompatProvider(config)
    raise ValueError(f"no LLM provider named {config.provider!r}")


def _template(finding: StudyFinding, start: float, reason: str | None,
              attempts: int) -> Explanation:
    return Explanation(text=render(finding), provider="template", model=TEMPLATE_MODEL,
                       prompt_version=TEMPLATE_VERSION, latency_ms=_ms_since(start),
                       fallback_reason=reason, attempts=attempts)


def _model_name(reported: str | None, configured: str) -> str:
    """The server's own model string when it is a plain name, else the configured one."""
    if isinstance(reported, str) and 0 < len(reported) <= 128 and reported.isprintable() \
            and " " not in reported:
        return reported
    return configured


def _ms_since(start: float) -> int:
    return int(round((time.monotonic() - start) * 1000))
