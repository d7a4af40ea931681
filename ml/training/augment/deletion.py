"""Training-time removal: the faithfulness metric's own perturbation, made in-distribution.

The deletion metric (:mod:`ml.explain.faithfulness`) removes pixels and imputes them from
the kept pixels around them. A model that has never seen such images reads the smooth
patches as evidence of their own (a filled region looks lesion-like, a fully removed
head looks like a clean "notumor" slice, p = 1.0), so a deletion curve measures the
removal artefact as much as the evidence removed. Remove-and-retrain (ROAR, Hooker et al.
2019, https://arxiv.org/abs/1806.10758) answers that by training on removed images, so the
removal itself carries no information.

:func:`delete` does that with removals chosen independently of the content: for a random
share of the batch it ranks the head's pixels by a coarse uniform random map (bilinear,
like a CAM), removes the top fraction ``u ~ U(0, max_fraction)`` of the head and imputes
them as the metric does (normalised Gaussian convolution, sigma S / 16, computed on a 4x
coarser grid). The label is kept: where the lesion survives the model must still find it,
and where it is gone the best answer is the class prior, which is what a deletion curve
assumes at its end. It cannot prefer any explanation method: the removed places are
random.

Written in ``keras.ops``, so it runs on any backend: :func:`random_deletion` draws the
randomness with TensorFlow for ``ml.train``'s ``tf.data`` pipeline, and
:class:`ml.training.augment.keras_layer.RandomDeletion` draws it with ``keras.random``,
for a training run on the JAX backend without TensorFlow (``research.sweep``).
"""
from __future__ import annotations

import math

import numpy as np
from keras import ops


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(math.ceil(4.0 * sigma)))  # as OpenCV picks for float images
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(images, sigma: float):
    """(B, H, W, 1) -> the same, separable Gaussian of ``sigma`` pixels, reflected border
    (as OpenCV's default ``BORDER_REFLECT_101``)."""
    k = _gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    x = ops.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
    x = ops.conv(x, ops.convert_to_tensor(k.reshape(-1, 1, 1, 1)), padding="valid")
    return ops.conv(x, ops.convert_to_tensor(k.reshape(1, -1, 1, 1)), padding="valid")


def head_mask(images):
    """(B, S, S, 1) -> bool mask of the head: blurred intensity (sigma 2) above 0.05,
    as :func:`ml.explain.faithfulness.head_foreground`."""
    return gaussian_blur(images, 2.0) > 0.05


def _smooth(a, size: int):
    """Gaussian of sigma S / 16 on a 4x coarser grid (box-averaged down, bilinear up), as
    the metric's imputation (``cv2.INTER_AREA``: the same box average when 4 divides S)."""
    f = 4 if size >= 64 else 1
    if f == 1:
        return gaussian_blur(a, size / 16.0)
    small = ops.average_pool(a, f, f, padding="same")
    small = gaussian_blur(small, size / 16.0 / f)
    return ops.image.resize(small, (size, size), interpolation="bilinear")


def impute(images, removed):
    """(B, S, S, 1) images with ``removed`` (same shape, bool) refilled from the kept pixels:
    G * (x . kept) / G * kept, and where no kept pixel is near, the mean of the kept ones."""
    size = int(images.shape[1])
    kept = 1.0 - ops.cast(removed, "float32")
    num, den = _smooth(images * kept, size), _smooth(kept, size)
    n_kept = ops.sum(kept, axis=(1, 2, 3), keepdims=True)
    fallback = ops.divide_no_nan(ops.sum(images * kept, axis=(1, 2, 3), keepdims=True), n_kept)
    fill = ops.where(den > 1e-3, num / ops.maximum(den, 1e-3), fallback)
    return ops.where(removed, fill, images)


def removal_mask(images, fractions, noise):
    """(B, S, S, 1) bool: the top ``fractions`` (B,) of each head's pixels under the coarse
    random maps ``noise`` (B, g, g, 1) in [0, 1), bilinearly upsampled."""
    size = int(images.shape[1])
    b = ops.shape(images)[0]
    head = head_mask(images)
    up = ops.image.resize(noise, (size, size), interpolation="bilinear")
    key = ops.reshape(ops.where(head, up, -1.0), (b, -1))                    # background last
    n_head = ops.sum(ops.cast(ops.reshape(head, (b, -1)), "float32"), axis=1)
    k = ops.cast(ops.round(fractions * n_head), "int32")                     # (B,)
    ranked = ops.flip(ops.sort(key, axis=1), axis=1)                         # descending
    kth = ops.take_along_axis(ranked, ops.maximum(k - 1, 0)[:, None], axis=1)  # k-th largest
    removed = (key >= kth) & (k[:, None] > 0) & ops.reshape(head, (b, -1))
    return ops.reshape(removed, ops.shape(images))


def check_settings(rate: float, max_fraction: float) -> None:
    if not 0.0 <= rate <= 1.0 or not 0.0 < max_fraction <= 1.0:
        raise ValueError(f"rate must be in [0, 1] and max_fraction in (0, 1], received {rate}, {max_fraction}")


def delete(images, touched, shares, noise, max_fraction: float = 1.0):
    """Remove ``shares * max_fraction`` of the head where ``touched`` (B,) is true.

    Args:
        images: (B, S, S, 1) float32 in [0, 1], S static.
        touched: (B,) bool; untouched images are returned bit for bit.
        shares: (B,) uniform [0, 1) draws; noise: (B, g, g, 1) uniform [0, 1) draws.
    """
    fractions = ops.where(touched, shares * max_fraction, 0.0)
    return impute(images, removal_mask(images, fractions, noise))


def random_deletion(images, *, rate: float = 0.5, max_fraction: float = 1.0, grid: int = 10):
    """Remove a random share of the head from a random ``rate`` of the batch (TensorFlow
    randomness, for ``tf.data``).

    Args:
        images: (B, S, S, 1) float32 in [0, 1], S static.
        rate: probability that an image is touched at all.
        max_fraction: the removed share of the head is uniform in [0, max_fraction].
        grid: side of the coarse random map that picks the places.

    Returns:
        Images of the same shape; untouched ones are returned bit for bit.
    """
    import tensorflow as tf

    check_settings(rate, max_fraction)
    b = tf.shape(images)[0]
    return delete(images, tf.random.uniform([b]) < rate, tf.random.uniform([b]),
                  tf.random.uniform([b, grid, grid, 1]), max_fraction)
