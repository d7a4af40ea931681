"""The training augmentation as a Keras layer, in ``keras.ops``: runs on any backend.

The same transforms as :func:`ml.training.augment.tf_data.augment_batch` (left-right
flip, rotation, zoom, shift, brightness, contrast, clip to [0, 1]) with the same
parameters and the same affine convention, written in backend-neutral ops so a training
run on the JAX backend, where ``tf.data`` may be missing, augments exactly as a
TensorFlow run does.
Active only when ``training=True``.
"""
from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="brainai")
class Augment(keras.layers.Layer):
    """Random flips, rotation, zoom, shift, brightness and contrast on (B, S, S, 1) in [0, 1]."""

    def __init__(self, rotate_deg: float = 10.0, zoom: float = 0.1, shift: float = 0.06,
                 brightness: float = 0.1, contrast: tuple[float, float] = (0.85, 1.15),
                 seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotate_deg, self.zoom, self.shift = float(rotate_deg), float(zoom), float(shift)
        self.brightness, self.contrast = float(brightness), tuple(float(c) for c in contrast)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _uniform(self, shape, low, high):
        return keras.random.uniform(shape, low, high, seed=self.seed_generator)

    def call(self, images, training=False):
        if not training:
            return images
        shape = ops.shape(images)
        b, size = shape[0], ops.cast(shape[1], "float32")
        flip = self._uniform((b, 1, 1, 1), 0.0, 1.0) < 0.5
        images = ops.where(flip, ops.flip(images, axis=2), images)
        theta = self._uniform((b,), -self.rotate_deg, self.rotate_deg) * (math.pi / 180.0)
        zoom = self._uniform((b,), 1.0 - self.zoom, 1.0 + self.zoom)
        shift = self._uniform((b, 2), -self.shift, self.shift) * size
        c = (size - 1.0) / 2.0
        cos, sin = ops.cos(theta) / zoom, ops.sin(theta) / zoom
        # Output pixel (x, y) samples the input at A @ (x - c, y - c) + c + shift.
        a0, a1, b0, b1 = cos, -sin, sin, cos
        a2 = c - a0 * c - a1 * c + shift[:, 0]
        b2 = c - b0 * c - b1 * c + shift[:, 1]
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        images = ops.image.affine_transform(images, transform, interpolation="bilinear",
                                            fill_mode="constant", fill_value=0.0)
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        k = self._uniform((b, 1, 1, 1), self.contrast[0], self.contrast[1])
        d = self._uniform((b, 1, 1, 1), -self.brightness, self.brightness)
        return ops.clip((images - mean) * k + mean + d, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rotate_deg": self.rotate_deg, "zoom": self.zoom,
                "shift": self.shift, "brightness": self.brightness,
                "contrast": list(self.contrast), "seed": self.seed}


@keras.saving.register_keras_serializable(package="brainai")
class RandomDeletion(keras.layers.Layer):
    """:mod:`ml.training.augment.deletion` as a layer: for a random ``rate`` of the batch, remove a
    random share of the head (up to ``max_fraction``) at places a coarse random map picks,
    imputed as the faithfulness metric does. Active only when ``training=True``."""

    def __init__(self, rate: float = 0.5, max_fraction: float = 1.0, grid: int = 10,
                 seed: int | None = None, **kwargs):
        from ml.training.augment.deletion import check_settings

        super().__init__(**kwargs)
        check_settings(rate, max_fraction)
        self.rate, self.max_fraction, self.grid = float(rate), float(max_fraction), int(grid)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        from ml.training.augment.deletion import delete

        if not training or self.rate == 0.0:
            return images
        b = ops.shape(images)[0]
        draw = lambda shape: keras.random.uniform(shape, 0.0, 1.0, seed=self.seed_generator)  # noqa: E731
        return delete(images, draw((b,)) < self.rate, draw((b,)), draw((b, self.grid, self.grid, 1)),
                      self.max_fraction)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "max_fraction": self.max_fraction,
                "grid": self.grid, "seed": self.seed}
