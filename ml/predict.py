"""The reference forward pass: calibrated probabilities and penultimate features.

Test-time augmentation is a left-right flip: logits and features are averaged over
the image and its mirror. Training metadata records it (``"tta": "hflip"``); every
consumer (evaluation, the guard, :class:`ml.analyzer.Analyzer`) follows this one
convention so their numbers agree.
"""
from __future__ import annotations

import numpy as np

TTA = "hflip"


def uses_flip(metadata: dict) -> bool:
    """Whether a model's metadata asks for the flip TTA (``"tta"``; models saved before the
    field existed used it)."""
    return metadata.get("tta", TTA) == "hflip"


def with_flips(x: np.ndarray) -> np.ndarray:
    """(N, S, S, 1) -> (2N, S, S, 1): the batch followed by its left-right mirror."""
    return np.concatenate([x, x[:, :, ::-1, :]], axis=0)


def merge_flips(y: np.ndarray) -> np.ndarray:
    """(2N, ...) -> (N, ...): mean over an image and its mirror (as built by with_flips)."""
    n = len(y) // 2
    return 0.5 * (y[:n] + y[n:])


def logits_and_features_model(model, feature_layer: str):
    """A Keras model mapping images to [logits, penultimate features]."""
    import keras

    return keras.Model(model.input, [model.output, model.get_layer(feature_layer).output],
                       name=f"{model.name}_with_features")


def batch_for(size: int, pixels: int = 64 * 160 * 160) -> int:
    """Images per forward pass at input side ``size``: a fixed pixel budget.

    64 slices at 160 px; 18 at 299 px. Xception's activations at 299 px for a batch of 64
    (128 with the mirror) took over 20 GB on this 24 GB machine.
    """
    return max(1, pixels // (size * size))


def predict_logits_features(dual_model, x: np.ndarray, batch_size: int | None = None,
                            tta: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over x in batches.

    Args:
        dual_model: from :func:`logits_and_features_model`.
        x: (N, S, S, 1) float32 in [0, 1] (outputs of :func:`ml.preprocess.prepare`).
        batch_size: images per pass; default :func:`batch_for` the input size.
        tta: average over the left-right flip.

    Returns:
        logits (N, C) and features (N, D), float32.
    """
    batch_size = batch_size or batch_for(int(x.shape[1]) if len(x) else 160)
    logits, feats = [], []
    for i in range(0, len(x), batch_size):
        xb = np.asarray(x[i:i + batch_size], dtype=np.float32)
        xin = with_flips(xb) if tta else xb
        lo, fe = dual_model(xin, training=False)
        lo, fe = np.asarray(lo), np.asarray(fe)
        if tta:
            lo, fe = merge_flips(lo), merge_flips(fe)
        logits.append(lo)
        feats.append(fe)
    if not logits:
        return np.zeros((0, dual_model.output[0].shape[-1]), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(logits).astype(np.float32), np.concatenate(feats).astype(np.float32)
