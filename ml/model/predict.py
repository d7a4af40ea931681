"""The reference forward pass: calibrated probabilities and penultimate features.

Test-time augmentation is a left-right flip: logits and features are averaged over
the image and its mirror. Training metadata records it (``"tta": "hflip"``); every
consumer (evaluation, the guard, :class:`ml.analysis.analyzer.Analyzer`) follows this one
convention so their numbers agree. This module is the one place the averaging is written
(:func:`with_flips`, :func:`merge_flips`, :func:`merge_flipped_maps`): the Analyzer, the
CAM and guided-backprop references and the fused graphs all call it.
"""
from __future__ import annotations

import numpy as np

TTA = "hflip"


def uses_flip(metadata: dict) -> bool:
    """Whether a model's metadata asks for the flip TTA (``"tta"``; metadata without the
    field means the flip, the training default)."""
    return metadata.get("tta", TTA) == "hflip"


def with_flips(x):
    """(N, S, S, 1) -> (2N, S, S, 1): the batch, then its left-right mirror.

    Written in ``keras.ops``, so it serves numpy batches and the tensors inside the
    compiled analysis graphs (TensorFlow or JAX) alike; returns a backend tensor.
    """
    from keras import ops

    return ops.concatenate([x, ops.flip(x, axis=2)], axis=0)


def merge_flips(y):
    """(2N, ...) -> (N, ...): mean of an output and its mirror's (as built by :func:`with_flips`),
    for outputs with no space axis (logits, features)."""
    from keras import ops

    n = ops.shape(y)[0] // 2                    # a tensor under tf.function with a None batch
    return 0.5 * (y[:n] + y[n:])


def merge_flipped_maps(m):
    """(2N, h, w[, c]) -> (N, h, w[, c]): a map and its mirror's map, flipped back, averaged.

    Flipping the mirror's map back puts both on the image's own grid. For a gradient
    map this average is exactly the gradient of the TTA logit (the mean of the two
    halves' logits) with respect to the image, because the flip is linear.
    """
    from keras import ops

    n = ops.shape(m)[0] // 2
    return 0.5 * (m[:n] + ops.flip(m[n:], axis=2))


def logits_and_features_model(model, feature_layer: str):
    """A Keras model mapping images to [logits, penultimate features]."""
    import keras

    return keras.Model(model.input, [model.output, model.get_layer(feature_layer).output],
                       name=f"{model.name}_with_features")


def batch_for(size: int, pixels: int = 64 * 160 * 160) -> int:
    """Images per forward pass at input side ``size``: a fixed pixel budget.

    64 slices at 160 px; 18 at 299 px. Xception's activations at 299 px for a batch of 64
    (128 with the mirror) take over 20 GB, more than a 24 GB machine can spare.
    """
    return max(1, pixels // (size * size))


def predict_logits_features(dual_model, x: np.ndarray, batch_size: int | None = None,
                            tta: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over x in batches.

    Args:
        dual_model: from :func:`logits_and_features_model`.
        x: (N, S, S, 1) float32 in [0, 1] (outputs of :func:`ml.model.preprocess.prepare`).
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
        if tta:
            lo, fe = merge_flips(lo), merge_flips(fe)
        logits.append(np.asarray(lo))
        feats.append(np.asarray(fe))
    if not logits:
        return np.zeros((0, dual_model.output[0].shape[-1]), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(logits).astype(np.float32), np.concatenate(feats).astype(np.float32)
