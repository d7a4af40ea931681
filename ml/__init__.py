"""BrainAI's machine-learning library: numpy, Keras and TensorFlow, never Django.

``import ml`` is cheap: TensorFlow is imported only when something needs it.
:class:`ml.Analyzer` (the API the workers call) is resolved lazily on first access.
"""
from __future__ import annotations

__all__ = ["Analyzer", "SliceResult"]


def __getattr__(name: str):
    # PEP 562 lazy attribute: `from ml import Analyzer` imports ml.analysis.analyzer only then.
    if name in __all__:
        from ml.analysis import analyzer

        return getattr(analyzer, name)
    raise AttributeError(f"module 'ml' has no attribute {name!r}")
