"""Which input guard a model uses, and where the guard's features come from.

A model's ``metadata.json`` either holds its own guard (``guard``: Mahalanobis statistics
of its own penultimate features, fitted by :mod:`ml.training.finalize`) or names another shipped
model whose guard it borrows (``guard_model``). Xception borrows `cnn`'s: its own
128-unit head, trained from scratch, separates brain MRI from blank, noise and text
images poorly (AUROC 0.913 against 0.9997 for `cnn`'s features, model card), and whether
an image is a brain MRI slice does not depend on which classifier reads it. A borrowed
guard costs one forward pass of the compact model (about 4% of Xception's arithmetic).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class GuardSource:
    """An input guard and, when it is borrowed, the model that computes its features.

    Attributes:
        guard: the :class:`ml.guard.input_guard.InputGuard`.
        owner: the name of the model whose guard this is.
        dual: None when the guard reads the analysed model's own features; else the
            lender's (logits, features) model (:func:`ml.model.predict.logits_and_features_model`).
        size: the lender's input side (its own preprocessing).
    """

    guard: Any
    owner: str
    dual: Any = None
    size: int = 0

    @property
    def borrowed(self) -> bool:
        return self.dual is not None

    def features(self, pixels: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lender's prepared inputs, logits and features (flip-averaged) for raw slices."""
        from ml.model.predict import predict_logits_features
        from ml.model.preprocess import prepare

        x = np.stack([prepare(p, self.size).x for p in pixels])
        logits, feats = predict_logits_features(self.dual, x[..., None])
        return x, logits, feats


def for_metadata(metadata: dict, name: str = "model") -> GuardSource | None:
    """The guard a model's metadata asks for; None if it has none.

    Raises:
        ml.errors.ModelNotFoundError: ``guard_model`` names a model that does not ship.
        ValueError: the lender borrows a guard itself, or has none.
    """
    from ml.guard.input_guard import InputGuard

    if metadata.get("guard"):
        return GuardSource(InputGuard.from_metadata(metadata["guard"]), name)
    lender_name = metadata.get("guard_model")
    if not lender_name:
        return None
    from ml.model import registry
    from ml.model.predict import logits_and_features_model

    lender = registry.get(lender_name)
    if not lender.metadata.get("guard"):
        raise ValueError(f"{name} borrows the input guard of {lender_name!r}, which has no guard of its own")
    dual = logits_and_features_model(registry.load_keras(lender), lender.metadata["feature_layer"])
    return GuardSource(InputGuard.from_metadata(lender.metadata["guard"]), lender.name, dual,
                       int(lender.metadata["input_size"]))
