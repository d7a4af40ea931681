"""Knowledge distillation: a shipped model teaches the one being trained.

Hinton et al. 2015 (https://arxiv.org/abs/1503.02531): besides the true label, the
student matches the teacher's softened class distribution,

    loss = (1 - alpha) * CE(smoothed one-hot, student)
           + alpha * tau^2 * KL(softmax(teacher / tau) || softmax(student / tau)).

The teacher's logits are computed once, on the un-augmented training and validation
images (no flip: the shipped Xception is as accurate without it), and cached under
``--cache-dir`` keyed by the teacher's version and the images. The augmentations of
``ml.training.augment.tf_data`` preserve the label, so the clean image's soft label stands for its
augmented copies (an offline teacher; a teacher run on every augmented batch would cost
Xception's forward pass at every step, which this CPU cannot afford).

The targets travel as one (N, 2C) array: the one-hot label, then the teacher's logits,
so Keras' ``fit`` needs no custom training step.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def teacher_logits(teacher: str, items, cache_dir: str | None, *, batch: int = 16,
                   progress: bool = True) -> np.ndarray:
    """(N, C) logits of the shipped model ``teacher`` on ``items`` (no TTA), cached."""
    from ml.data import dataset as mldata
    from ml.model import registry

    info = registry.get(teacher)
    size = int(info.metadata["input_size"])
    key = hashlib.sha256(("\n".join(it.sha256 for it in items) + info.version).encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"teacher-{info.name}-{key}.npy" if cache_dir else None
    if cache is not None and cache.exists():
        return np.load(cache)
    x = mldata.load_arrays(items, size, cache_dir=cache_dir)
    model = registry.load_keras(info)
    out = []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch].astype(np.float32)[..., None] / 255.0
        out.append(np.asarray(model(xb, training=False), np.float32))
        if progress and (i // batch) % 20 == 0:
            print(f"teacher {info.name}: {i + len(xb)}/{len(x)}", flush=True)
    logits = np.concatenate(out) if out else np.zeros((0, len(info.metadata["classes"])), np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, logits)
    return logits


def targets(y: np.ndarray, logits: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) labels and (N, C) teacher logits -> (N, 2C) float32 training targets."""
    onehot = np.eye(n_classes, dtype=np.float32)[np.asarray(y, int)]
    return np.concatenate([onehot, np.asarray(logits, np.float32)], axis=1)


def kd_loss(n_classes: int, alpha: float, tau: float, label_smoothing: float):
    """A Keras loss over (N, 2C) targets (see :func:`targets`) and (N, C) student logits."""
    import keras
    from keras import ops

    if not 0.0 <= alpha <= 1.0 or tau <= 0:
        raise ValueError(f"need 0 <= alpha <= 1 and tau > 0, received alpha={alpha}, tau={tau}")
    ce = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing,
                                              reduction=None)

    def loss(y_true, y_pred):
        onehot, t_logits = y_true[:, :n_classes], y_true[:, n_classes:]
        p_t = ops.softmax(t_logits / tau, axis=-1)
        log_p_t = ops.log_softmax(t_logits / tau, axis=-1)
        log_p_s = ops.log_softmax(y_pred / tau, axis=-1)
        kl = ops.sum(p_t * (log_p_t - log_p_s), axis=-1)
        return (1.0 - alpha) * ce(onehot, y_pred) + alpha * tau * tau * kl

    loss.__name__ = "kd_loss"
    return loss


def label_accuracy(n_classes: int):
    """Accuracy against the one-hot half of the (N, 2C) targets."""
    from keras import ops

    def accuracy(y_true, y_pred):
        return ops.cast(ops.equal(ops.argmax(y_true[:, :n_classes], -1), ops.argmax(y_pred, -1)), "float32")

    accuracy.__name__ = "accuracy"
    return accuracy
