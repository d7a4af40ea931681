"""Training-time removal: the faithfulness metric's own perturbation, made in-distribution.

The deletion metric (:mod:`ml.explain.faithfulness`) removes pixels and imputes them from
the kept pixels around them. A model that has never seen such images reads the smooth
patches as evidence of their own (a filled region looks lesion-like, a fully removed
head looks like a clean "notumor" slice, p = 1.0), so a deletion curve measures the
removal artefact as much as the evidence removed. Remove-and-retrain (ROAR, Hooker et al.
2019, https://arxiv.org/abs/1806.10758) answers that by training on removed images, so the
removal itself carries no information.

:func:`random_deletion` does that with removals chosen independently of the content: for
a random half of the batch it ranks the head's pixels by a coarse uniform random map
(bilinear, like a CAM), removes the top fraction ``u ~ U(0, max_fraction)`` of the head
and imputes them as the metric does (normalised Gaussian convolution, sigma S / 16,
computed on a 4x coarser grid). The label is kept: where the lesion survives the model
must still find it, and where it is gone the best answer is the class prior, which is
what a deletion curve assumes at its end. It cannot prefer any explanation method: the
removed places are random.

TensorFlow ops, run inside ``tf.data`` after :func:`ml.augment.augment_batch`.
"""
from __future__ import annotations

import math

import tensorflow as tf


def _gaussian_kernel(sigma: float) -> tf.Tensor:
    radius = max(1, int(math.ceil(4.0 * sigma)))  # as OpenCV picks for float images
    t = tf.range(-radius, radius + 1, dtype=tf.float32)
    k = tf.exp(-0.5 * (t / sigma) ** 2)
    return k / tf.reduce_sum(k)


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """(B, H, W, 1) -> the same, separable Gaussian of ``sigma`` pixels, reflected border
    (as OpenCV's default ``BORDER_REFLECT_101``)."""
    k = _gaussian_kernel(sigma)
    r = (int(k.shape[0]) - 1) // 2
    x = tf.pad(images, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    x = tf.nn.conv2d(x, tf.reshape(k, [-1, 1, 1, 1]), strides=1, padding="VALID")
    return tf.nn.conv2d(x, tf.reshape(k, [1, -1, 1, 1]), strides=1, padding="VALID")


def head_mask(images: tf.Tensor) -> tf.Tensor:
    """(B, S, S, 1) -> float mask of the head: blurred intensity (sigma 2) above 0.05,
    as :func:`ml.explain.faithfulness.head_foreground`."""
    return tf.cast(gaussian_blur(images, 2.0) > 0.05, tf.float32)


def _smooth(a: tf.Tensor, size: int) -> tf.Tensor:
    """Gaussian of sigma S / 16 on a 4x coarser grid, as the metric's imputation."""
    f = 4 if size >= 64 else 1
    if f == 1:
        return gaussian_blur(a, size / 16.0)
    small = tf.image.resize(a, [size // f, size // f], method="area")
    small = gaussian_blur(small, size / 16.0 / f)
    return tf.image.resize(small, [size, size], method="bilinear")


def impute(images: tf.Tensor, removed: tf.Tensor) -> tf.Tensor:
    """(B, S, S, 1) images with ``removed`` (same shape, bool) refilled from the kept pixels:
    G * (x . kept) / G * kept, and where no kept pixel is near, the mean of the kept ones."""
    size = int(images.shape[1])
    kept = 1.0 - tf.cast(removed, tf.float32)
    num, den = _smooth(images * kept, size), _smooth(kept, size)
    n_kept = tf.reduce_sum(kept, axis=[1, 2, 3], keepdims=True)
    fallback = tf.math.divide_no_nan(tf.reduce_sum(images * kept, axis=[1, 2, 3], keepdims=True), n_kept)
    fill = tf.where(den > 1e-3, num / tf.maximum(den, 1e-3), fallback)
    return tf.where(removed, fill, images)


def random_removal_mask(images: tf.Tensor, fractions: tf.Tensor, grid: int = 10) -> tf.Tensor:
    """(B, S, S, 1) bool: the top ``fractions`` (B,) of each head's pixels under a coarse
    uniform random map of ``grid`` x ``grid`` cells, bilinearly upsampled."""
    shape = tf.shape(images)
    b, size = shape[0], int(images.shape[1])
    head = head_mask(images) > 0
    noise = tf.image.resize(tf.random.uniform([b, grid, grid, 1]), [size, size], method="bilinear")
    key = tf.reshape(tf.where(head, noise, -1.0), [b, -1])                   # background last
    n_head = tf.reduce_sum(tf.cast(tf.reshape(head, [b, -1]), tf.float32), axis=1)
    k = tf.cast(tf.round(fractions * n_head), tf.int32)                      # (B,)
    ranked = tf.sort(key, axis=1, direction="DESCENDING")
    kth = tf.gather(ranked, tf.maximum(k - 1, 0), axis=1, batch_dims=1)      # k-th largest
    removed = (key >= kth[:, None]) & (k[:, None] > 0) & tf.reshape(head, [b, -1])
    return tf.reshape(removed, tf.shape(images))


def random_deletion(images: tf.Tensor, *, rate: float = 0.5, max_fraction: float = 1.0,
                    grid: int = 10) -> tf.Tensor:
    """Remove a random share of the head from a random ``rate`` of the batch.

    Args:
        images: (B, S, S, 1) float32 in [0, 1], S static.
        rate: probability that an image is touched at all.
        max_fraction: the removed share of the head is uniform in [0, max_fraction].
        grid: side of the coarse random map that picks the places.

    Returns:
        Images of the same shape; untouched ones are returned bit for bit.
    """
    if not 0.0 <= rate <= 1.0 or not 0.0 < max_fraction <= 1.0:
        raise ValueError(f"rate must be in [0, 1] and max_fraction in (0, 1], received {rate}, {max_fraction}")
    b = tf.shape(images)[0]
    touched = tf.random.uniform([b]) < rate
    fractions = tf.where(touched, tf.random.uniform([b], 0.0, max_fraction), 0.0)
    removed = random_removal_mask(images, fractions, grid)
    return impute(images, removed)
