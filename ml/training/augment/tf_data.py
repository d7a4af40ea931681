"""In-graph augmentation on decoded arrays (tf.data), cheap next to the model step."""
from __future__ import annotations

import math

import tensorflow as tf


def _affine(images: tf.Tensor, max_rotate_deg: float, max_zoom: float, max_shift: float) -> tf.Tensor:
    """Random rotation, zoom and shift about the centre. images: (B, S, S, 1) float32."""
    b = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    theta = tf.random.uniform([b], -max_rotate_deg, max_rotate_deg) * (math.pi / 180.0)
    zoom = tf.random.uniform([b], 1.0 - max_zoom, 1.0 + max_zoom)
    shift = tf.random.uniform([b, 2], -max_shift, max_shift) * size
    c = (size - 1.0) / 2.0
    cos, sin = tf.cos(theta) / zoom, tf.sin(theta) / zoom
    # Output pixel (x, y) samples input at A @ (x - c, y - c) + c + shift.
    a0, a1 = cos, -sin
    b0, b1 = sin, cos
    a2 = c - a0 * c - a1 * c + shift[:, 0]
    b2 = c - b0 * c - b1 * c + shift[:, 1]
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT",
    )


def augment_batch(images: tf.Tensor, *, rotate_deg: float = 10.0, zoom: float = 0.1,
                  shift: float = 0.06, brightness: float = 0.1,
                  contrast: tuple[float, float] = (0.85, 1.15)) -> tf.Tensor:
    """Flips, small rotations, zoom, shifts, brightness and contrast.

    Args:
        images: (B, S, S, 1) float32 in [0, 1].

    Returns:
        Augmented images of the same shape, clipped to [0, 1].
    """
    b = tf.shape(images)[0]
    flip = tf.random.uniform([b, 1, 1, 1]) < 0.5
    images = tf.where(flip, tf.reverse(images, axis=[2]), images)
    images = _affine(images, rotate_deg, zoom, shift)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    c = tf.random.uniform([b, 1, 1, 1], contrast[0], contrast[1])
    d = tf.random.uniform([b, 1, 1, 1], -brightness, brightness)
    images = (images - mean) * c + mean + d
    return tf.clip_by_value(images, 0.0, 1.0)
