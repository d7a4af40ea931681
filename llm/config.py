"""LLM settings, read from the environment once at start-up.

Every variable is checked here so that a bad value stops start-up with a message that
names the variable (Django settings wrap the ``ValueError`` into
``ImproperlyConfigured``), rather than failing on the first report an hour later.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

PROVIDERS = ("gemini", "openai", "template")
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"
DEFAULT_TIMEOUT_S = 20.0
MAX_TIMEOUT_S = 300.0

# Model names seen in the wild: "gemini-2.5-flash", "models/gemini-2.5-flash",
# "llama3.1:8b" (Ollama), "meta-llama/Llama-3.1-8B-Instruct" (vLLM). The name goes into
# a URL path (Gemini), so nothing that could change the path or the query.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class LLMConfig:
    """Which LLM explains findings, and how long a report may wait for it.

    Attributes:
        provider: "gemini", "openai" (an on-prem OpenAI-compatible server) or "template".
        gemini_api_key: the Gemini API key (never printed in repr).
        gemini_model: Gemini model name.
        gemini_base_url: a proxy or test endpoint; None for Google's default.
        openai_base_url: the on-prem server, e.g. "http://vllm:8000/v1".
        openai_model: the model name that server serves.
        timeout_s: the whole budget for one explanation, retries included.
        send_images: whether the de-identified overlay PNG may go with the prompt.
        max_attempts: requests per explanation for 429/5xx/connection errors.
        backoff_s: first wait before a retry; doubles each time (with jitter).
    """

    provider: str = "template"
    gemini_api_key: str | None = field(default=None, repr=False)
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    send_images: bool = False
    max_attempts: int = 3
    backoff_s: float = 0.5

    def __post_init__(self):
        if self.provider not in PROVIDERS:
            raise ValueError(f"LLMConfig.provider must be one of {', '.join(PROVIDERS)}. "
                             f"Received: provider={self.provider!r}")
        if not (isinstance(self.timeout_s, (int, float)) and math.isfinite(self.timeout_s)
                and 0 < self.timeout_s <= MAX_TIMEOUT_S):
            raise ValueError(f"LLMConfig.timeout_s must be a number of seconds in "
                             f"(0, {MAX_TIMEOUT_S:g}]. Received: timeout_s={self.timeout_s!r}")
        if not (isinstance(self.max_attempts, int) and 1 <= self.max_attempts <= 10):
            raise ValueError("LLMConfig.max_attempts must be an integer in [1, 10]. "
                             f"Received: max_attempts={self.max_attempts!r}")
        if not (isinstance(self.backoff_s, (int, float)) and 0 <= self.backoff_s <= 60):
            raise ValueError("LLMConfig.backoff_s must be in [0, 60] seconds. "
                             f"Received: backoff_s={self.backoff_s!r}")
        if self.provider == "gemini" and not self.gemini_api_key:
            raise ValueError("LLMConfig: provider 'gemini' needs gemini_api_key (GEMINI_API_KEY).")
        if self.provider == "openai" and not (self.openai_base_url and self.openai_model):
            raise ValueError("LLMConfig: provider 'openai' needs openai_base_url "
                             "(BRAINAI_OPENAI_BASE_URL) and openai_model (BRAINAI_OPENAI_MODEL).")

    @property
    def model(self) -> str:
        """The model name of the configured provider ("template" for the template)."""
        if self.provider == "gemini":
            return self.gemini_model
        if self.provider == "openai":
            return self.openai_model or ""
        return "template"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "LLMConfig":
        """Read and check the BRAINAI_LLM_* / GEMINI_* / BRAINAI_OPENAI_* variables.

        Args:
            environ: the environment; ``os.environ`` when None.

        Returns:
            The configuration. The provider defaults to "gemini" when GEMINI_API_KEY is
            set, else "template".

        Raises:
            ValueError: a variable has a bad value; the message names the variable and
                what it received (never the API key itself).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return (env.get(name) or "").strip()

        api_key = get("GEMINI_API_KEY") or None
        provider = get("BRAINAI_LLM_PROVIDER").lower() or ("gemini" if api_key else "template")
        if provider not in PROVIDERS:
            raise ValueError(f"BRAINAI_LLM_PROVIDER must be one of {', '.join(PROVIDERS)}. "
                             f"Received: {get('BRAINAI_LLM_PROVIDER')!r}")
        if provider == "gemini" and not api_key:
            raise ValueError("GEMINI_API_KEY must be set when BRAINAI_LLM_PROVIDER=gemini "
                             "(or choose BRAINAI_LLM_PROVIDER=openai or template).")

        gemini_model = _model_name("BRAINAI_GEMINI_MODEL", get("BRAINAI_GEMINI_MODEL"),
                                   default=DEFAULT_GEMINI_MODEL)
        gemini_base_url = _url("BRAINAI_GEMINI_BASE_URL", get("BRAINAI_GEMINI_BASE_URL"))
        openai_base_url = _url("BRAINAI_OPENAI_BASE_URL", get("BRAINAI_OPENAI_BASE_URL"))
        openai_model = _model_name("BRAINAI_OPENAI_MODEL", get("BRAINAI_OPENAI_MODEL"))
        if provider == "openai":
            if not openai_base_url:
                raise ValueError("BRAINAI_OPENAI_BASE_URL must be set when "
                                 "BRAINAI_LLM_PROVIDER=openai, e.g. http://vllm:8000/v1")
            if not openai_model:
                raise ValueError("BRAINAI_OPENAI_MODEL must be set when BRAINAI_LLM_PROVIDER="
                                 "openai (the model name the server serves).")

        return cls(
            provider=provider,
            gemini_api_key=api_key,
            gemini_model=gemini_model,
            gemini_base_url=gemini_base_url,
            openai_base_url=openai_base_url,
            openai_model=openai_model,
            timeout_s=_seconds("BRAINAI_LLM_TIMEOUT_S", get("BRAINAI_LLM_TIMEOUT_S")),
            send_images=_flag("BRAINAI_LLM_SEND_IMAGES", get("BRAINAI_LLM_SEND_IMAGES")),
        )


def _flag(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name} must be one of 1/0, true/false, yes/no, on/off. Received: {raw!r}")


def _seconds(name: str, raw: str) -> float:
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds. Received: {raw!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
        raise ValueError(f"{name} must be in (0, {MAX_TIMEOUT_S:g}] seconds. Received: {raw!r}")
    return value


def _url(name: str, raw: str) -> str | None:
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL with a host, e.g. "
                         f"http://127.0.0.1:8000/v1. Received: {raw!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{name} must not carry a query, fragment or credentials. "
                         f"Received a URL with {parts.scheme}://{parts.hostname}...")
    return raw.rstrip("/")


def _model_name(name: str, raw: str, default: str | None = None) -> str | None:
    if not raw:
        return default
    if not _MODEL_NAME.match(raw) or ".." in raw:
        raise ValueError(f"{name} must be a model name such as 'gemini-2.5-flash' or "
                         f"'llama3.1:8b' (letters, digits, . _ : / @ + -). Received: {raw!r}")
    return raw
