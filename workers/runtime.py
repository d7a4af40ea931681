"""Per-process resources of a worker, created on first use (never at import)."""
from __future__ import annotations

import threading

from django.conf import settings

_lock = threading.Lock()


def analyzer(name: str | None = None):
    """The Analyzer for a model name (None or "": BRAINAI_MODEL), loaded once per worker
    process and kept warm.

    ml.Analyzer.load caches per model name, folder and weights hash, so each requested
    model is loaded once, and replacing the weights on disk loads the new model on the
    next batch.

    Raises:
        ml.errors.ModelNotFoundError: no such model.
    """
    from ml.analysis.analyzer import Analyzer

    with _lock:
        return Analyzer.load(name or settings.BRAINAI_MODEL)


def llm_config():
    """The LLM configuration checked at start-up (settings.BRAINAI_LLM)."""
    return settings.BRAINAI_LLM
