"""Spectrally normalised Dense, Conv2D and Embedding layers (Miyato et al. 2018).

Paper: https://arxiv.org/abs/1802.05957

Why not ``keras.layers.SpectralNormalization``: in Keras 3.15 that wrapper writes
``W / sigma`` back into the trainable kernel with ``assign`` during training. On the
TensorFlow backend the gradient then skips sigma; under JAX's ``stateless_call`` the
assignment to a *trainable* variable is dropped, the gradient flows through sigma, and
inference uses the raw kernel. The two backends would train different discriminators.
These layers do what the paper (and PyTorch's ``spectral_norm``) does on every backend:
the trainable variable is the raw ``W``; every call uses ``W / sigma(W)`` with sigma
from one power iteration whose vector ``u`` is a non-trainable variable, advanced only
when ``training=True``. Gradients flow through sigma; ``u`` and ``v`` are constants.
"""
from __future__ import annotations

import keras
from keras import ops

_EPS = 1e-12


def _l2_normalize(x):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + _EPS)


def spectral_normalize(kernel, u):
    """One power iteration; returns (kernel / sigma, new u).

    Args:
        kernel: any shape whose last axis is the output axis, e.g. (kh, kw, cin, cout).
        u: (1, cout), the running estimate of the top right-singular vector.

    Returns:
        The normalised kernel (same shape) and the updated u (1, cout).
    """
    w = ops.reshape(kernel, (-1, kernel.shape[-1]))          # (rows, cout)
    v = ops.stop_gradient(_l2_normalize(ops.matmul(u, ops.transpose(w))))   # (1, rows)
    u_new = ops.stop_gradient(_l2_normalize(ops.matmul(v, w)))             # (1, cout)
    sigma = ops.sum(ops.matmul(v, w) * u_new)                              # scalar
    return kernel / (sigma + _EPS), u_new


class _SpectralNorm(keras.layers.Layer):
    """Holds ``u`` and produces the normalised weight; subclasses define the op."""

    def _add_u(self, n_out: int):
        self.u = self.add_weight(shape=(1, n_out), name="sn_u", trainable=False,
                                 initializer=keras.initializers.RandomNormal(stddev=1.0))

    def _normalized(self, kernel, training):
        w, u = spectral_normalize(kernel, self.u.value)
        if training:
            self.u.assign(u)
        return w


@keras.saving.register_keras_serializable(package="brainai_gan")
class SNDense(_SpectralNorm):
    """Dense layer with a spectrally normalised kernel: (..., d_in) -> (..., units)."""

    def __init__(self, units: int, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.use_bias = int(units), bool(use_bias)

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel",
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros") \
            if self.use_bias else None
        self._add_u(self.units)

    def call(self, x, training=False):
        y = ops.matmul(x, self._normalized(self.kernel, training))
        return y + self.bias if self.use_bias else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="brainai_gan")
class SNConv2D(_SpectralNorm):
    """2-D convolution (channels last) with a spectrally normalised kernel."""

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, padding: str = "same",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides = int(filters), int(kernel_size), int(strides)
        self.padding = padding

    def build(self, input_shape):
        k = self.kernel_size
        self.kernel = self.add_weight(shape=(k, k, input_shape[-1], self.filters), name="kernel",
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(self.filters,), name="bias", initializer="zeros")
        self._add_u(self.filters)

    def call(self, x, training=False):
        w = self._normalized(self.kernel, training)
        return ops.conv(x, w, strides=self.strides, padding=self.padding) + self.bias

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        if self.padding == "same":
            oh = None if h is None else -(-h // self.strides)
            ow = None if w is None else -(-w // self.strides)
        else:
            oh = None if h is None else (h - self.kernel_size) // self.strides + 1
            ow = None if w is None else (w - self.kernel_size) // self.strides + 1
        return (b, oh, ow, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding}


@keras.saving.register_keras_serializable(package="brainai_gan")
class SNEmbedding(_SpectralNorm):
    """Class embedding with a spectrally normalised table: int (B,) -> (B, dim)."""

    def __init__(self, n: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.n, self.dim = int(n), int(dim)

    def build(self, input_shape):
        self.embeddings = self.add_weight(shape=(self.n, self.dim), name="embeddings",
                                          initializer="glorot_uniform")
        self._add_u(self.dim)

    def call(self, labels, training=False):
        table = self._normalized(self.embeddings, training)
        return ops.take(table, ops.cast(labels, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "n": self.n, "dim": self.dim}
