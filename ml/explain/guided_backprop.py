"""Guided backpropagation (Springenberg et al. 2015, https://arxiv.org/abs/1412.6806).

The gradient of the class score with respect to the input pixels, where every ReLU
passes back only positive gradient, and only where its input was positive. The result
is a sharp, pixel-level map; :mod:`ml.explain.saliency` turns it into the seed's
saliency picture.

The guided network is a clone of the model whose ReLU layers are swapped for
:class:`GuidedReLU` and whose other layers are *the same layer objects* (shared
weights): its forward pass is bit-for-bit the model's, so the fused analysis can read
probabilities, features and Grad-CAM from it too. Only ReLUs upstream of the Grad-CAM
target layer are swapped, so the gradient Grad-CAM reads (target layer -> logits) is
the ordinary one. The guided ReLU exists for the TensorFlow (``tf.custom_gradient``) and
JAX (``jax.custom_vjp``) backends; :class:`GuidedBackprop`, the unfused reference, is
TensorFlow only.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ml.explain.base_cam import check_cam_score, explained_score, find_layer, require_tensorflow
from ml.model.predict import merge_flipped_maps, merge_flips, with_flips


@lru_cache(maxsize=None)
def guided_relu_for(backend: str):
    """The guided ReLU of a Keras backend: ReLU forward; backward passes dy only where
    x > 0 and dy > 0.

    Raises:
        NotImplementedError: a backend other than ``tensorflow`` or ``jax``.
    """
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.custom_gradient
        def guided_relu(x):
            def grad(dy):
                return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

            return tf.nn.relu(x), grad

        return guided_relu
    if backend == "jax":
        import jax

        @jax.custom_vjp
        def guided_relu(x):
            return jax.nn.relu(x)

        def forward(x):
            return jax.nn.relu(x), x                    # keep the input for the backward rule

        def backward(x, dy):
            return (dy * (x > 0).astype(dy.dtype) * (dy > 0).astype(dy.dtype),)

        guided_relu.defvjp(forward, backward)
        return guided_relu
    raise NotImplementedError(f"guided backprop has no guided ReLU for the Keras backend {backend!r}")


def _guided_layer_class():
    import keras

    relu = guided_relu_for(keras.backend.backend())

    class GuidedReLU(keras.layers.Layer):
        """A parameter-free ReLU whose gradient follows the guided-backprop rule."""

        def call(self, x):
            return relu(x)

        def compute_output_shape(self, input_shape):
            return input_shape

    return GuidedReLU


def _is_plain_relu(layer) -> bool:
    import keras

    if isinstance(layer, keras.layers.ReLU):
        # The attributes, not get_config(): serialising probes for TensorFlow under JAX.
        return (getattr(layer, "max_value", None) is None and not getattr(layer, "negative_slope", 0.0)
                and not getattr(layer, "threshold", 0.0))
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", "") == "relu"
    return False


def guided_clone(model, record: tuple[str, ...] = (), upstream_of: str | None = None):
    """A guided-backprop twin of ``model`` that also outputs named intermediate layers.

    Args:
        model: a functional Keras model (N, S, S, 1) -> (N, C) logits.
        record: names of layers whose outputs the twin returns after the logits.
        upstream_of: swap only the ReLUs that come before this layer in the model's
            topological order (None: swap them all). Pass the Grad-CAM target layer.

    Returns:
        (twin, n_swapped): a ``keras.Model`` x -> [logits, *recorded outputs] sharing
        every weight with ``model``, and how many ReLU layers were swapped.

    Raises:
        ValueError: a recorded or ``upstream_of`` layer does not exist.
    """
    import keras

    for name in (*record, *([upstream_of] if upstream_of else [])):
        find_layer(model, name)
    order = {layer.name: i for i, layer in enumerate(model.layers)}
    limit = order[upstream_of] if upstream_of else len(order)
    guided_cls = _guided_layer_class()
    swapped: list[str] = []
    outputs: dict[str, object] = {}

    def clone_function(layer):
        if _is_plain_relu(layer) and order.get(layer.name, limit) < limit:
            swapped.append(layer.name)
            return guided_cls(name=layer.name)
        return layer  # the same object: weights are shared, not copied

    def call_function(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if layer.name in record:
            outputs[layer.name] = out
        return out

    twin = keras.models.clone_model(model, clone_function=clone_function,
                                    call_function=call_function)
    fused = keras.Model(twin.inputs[0], [twin.outputs[0], *[outputs[n] for n in record]],
                        name=f"{model.name}_guided")
    return fused, len(swapped)


class GuidedBackprop:
    """Guided-backprop input gradients for a batch of prepared inputs (unfused reference).

    Args:
        model: Keras model (N, S, S, 1) -> (N, C) logits.
        tta: follow ml.model.predict's flip convention (the mirror's gradient flipped back
            and averaged: the guided gradient of the TTA logit).
        score: ``logit`` or ``log_prob`` (:func:`ml.explain.base_cam.explained_score`).
        temperature: the calibration temperature for ``log_prob``.
    """

    name = "guided_backprop"
    paper = "https://arxiv.org/abs/1412.6806"

    def __init__(self, model, *, tta: bool = True, score: str = "logit", temperature: float = 1.0):
        require_tensorflow(type(self).__name__)
        import tensorflow as tf

        self.twin, self.n_swapped = guided_clone(model)
        self.tta = bool(tta)
        self.score, self.temperature = check_cam_score(score), float(temperature)
        self._compiled = tf.function(
            self._grads, reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32),
                             tf.TensorSpec([None], tf.int32)])

    def _grads(self, x, targets):
        import tensorflow as tf

        xin = with_flips(x) if self.tta else x                    # (2N, S, S, 1)
        with tf.GradientTape() as tape:
            tape.watch(xin)
            out = self.twin(xin, training=False)
            logits = out[0] if isinstance(out, (list, tuple)) else out  # (2N, C)
            merged = merge_flips(logits) if self.tta else logits
            cls = tf.where(targets >= 0, targets, tf.argmax(merged, -1, output_type=tf.int32))
            cls_all = tf.concat([cls, cls], 0) if self.tta else cls
            score = explained_score(logits, cls_all, self.score, self.temperature)
        g = tape.gradient(score, xin)                             # (2N, S, S, 1)
        return (merge_flipped_maps(g) if self.tta else g), cls

    def __call__(self, x: np.ndarray, targets=None) -> tuple[np.ndarray, np.ndarray]:
        """Args: x (N, S, S[, 1]) in [0, 1]; targets (N,) or None (predicted class).

        Returns:
            gradients (N, S, S, 1) float32 and the explained class (N,).
        """
        import tensorflow as tf

        x = np.asarray(x, np.float32)
        x = x[..., None] if x.ndim == 3 else x
        t = np.full(len(x), -1, np.int32) if targets is None else np.asarray(targets, np.int32)
        g, cls = self._compiled(tf.constant(x), tf.constant(t))
        return g.numpy(), cls.numpy()


def __getattr__(name: str):
    # ``guided_relu``: the current Keras backend's guided ReLU, resolved on first use.
    if name == "guided_relu":
        import keras

        return guided_relu_for(keras.backend.backend())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
