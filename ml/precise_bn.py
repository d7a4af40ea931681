"""Precise batch-norm statistics (Wu & Johnson 2021, https://arxiv.org/abs/2105.07576).

During training, BN keeps an exponential moving average of batch statistics taken while
the weights were still moving, and under augmentation. On this dataset that left the
validation accuracy swinging by several points from epoch to epoch (see the training
log in the model card). After training we recompute each BN layer's mean and variance
as the plain average over the unaugmented training set, with the final weights.
"""
from __future__ import annotations

import numpy as np


def recompute_bn_statistics(model, x: np.ndarray, batch_size: int = 128) -> int:
    """Overwrite every BatchNormalization layer's moving statistics with population ones.

    Args:
        model: a Keras model containing BatchNormalization layers.
        x: (N, S, S, C) float32 inputs, unaugmented.
        batch_size: larger batches give less noisy per-batch variances.

    Returns:
        The number of batches averaged.
    """
    import keras

    bns = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if not bns:
        return 0
    saved = [layer.momentum for layer in bns]
    # Layer-by-layer would be exact; a running mean with momentum (k-1)/k per batch k is
    # the cumulative average, and close enough with batches of 128.
    k = 0
    try:
        for i in range(0, len(x), batch_size):
            k += 1
            for layer in bns:
                layer.momentum = (k - 1) / k
            model(np.asarray(x[i:i + batch_size], np.float32), training=True)
    finally:
        for layer, m in zip(bns, saved):
            layer.momentum = m
    return k
