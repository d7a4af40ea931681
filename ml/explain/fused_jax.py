"""The fused analysis of :mod:`ml.explain.fused` under the Keras JAX backend.

Same inputs, outputs and conventions as :class:`ml.explain.fused.FusedGraph`: the batch
and its left-right mirror through the guided twin of the model, logits and features
averaged over the two halves, the class explained the argmax of the merged logits (or
the target given), the score its logit or calibrated log-probability
(:func:`ml.explain.base_cam.explained_score`), and the mirror half's maps flipped back
and averaged. The CAM methods' hooks are the same ``keras.ops`` formulas.

JAX has no tape to watch an intermediate tensor, so the twin is cut at the Grad-CAM
target layer into two functional sub-models that share its layers and weights:

* head: pixels (2N, S, S, 1) -> target activations (2N, h, w, K) (the guided ReLUs);
* tail: target activations -> logits (2N, C) and the penultimate features (2N, D);

and the backward pass is the two pullbacks of ``jax.vjp``: the tail's gives
d score / d activations (what every CAM method reads), the head's carries it on to the
pixels for the saliency. Forward, backward and the maps are one ``jax.jit`` program per
saliency flag, called with the weights through ``stateless_call``.

XLA compiles one program per input shape, so a batch is padded with blank images to
the next power of two (samples are independent in inference mode: the padding changes
no real row) and a process compiles a handful of programs, not one per batch size.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from ml.explain.base_cam import explained_score
from ml.explain.fused_base import CAM_METHODS, FusedBase
from ml.model.predict import merge_flips, with_flips


def padded_size(n: int) -> int:
    """The compiled batch size for n images: the next power of two (at least 1)."""
    return 1 << max(n - 1, 0).bit_length()


def _pad(a: np.ndarray, size: int, fill=0) -> np.ndarray:
    """(n, ...) -> (size, ...), the new rows filled with ``fill``."""
    if len(a) == size:
        return a
    pad = np.full((size - len(a),) + a.shape[1:], fill, a.dtype)
    return np.concatenate([a, pad])


def split_at_target(twin):
    """Cut the guided twin x -> [logits, activations, features] at the activations.

    Args:
        twin: a functional model from :func:`ml.explain.guided_backprop.guided_clone`
            with ``record=(target_layer, feature_layer)``.

    Returns:
        (head, tail, features_in_head): head maps x to [activations] and tail maps the
        activations to [logits, features], sharing the twin's layers; when the feature
        layer comes before the target layer, head gives [activations, features], tail
        [logits], and ``features_in_head`` is True.
    """
    import keras

    logits, acts, feats = twin.outputs
    try:
        tail = keras.Model(acts, [logits, feats], name=f"{twin.name}_tail")
        return keras.Model(twin.inputs[0], [acts], name=f"{twin.name}_head"), tail, False
    except ValueError:  # the features do not depend on the activations alone
        tail = keras.Model(acts, [logits], name=f"{twin.name}_tail")
        return keras.Model(twin.inputs[0], [acts, feats], name=f"{twin.name}_head"), tail, True


def in_bfloat16(model):
    """A copy of ``model`` whose layers compute in bfloat16 (Keras ``mixed_bfloat16``:
    float32 weights, bfloat16 activations), with the same weights. Layer names are kept,
    so the metadata's target and feature layers still name them.

    Args:
        model: a functional Keras model.

    Returns:
        The copy; its outputs are bfloat16 (:class:`FusedGraphJax` hands back float32).
    """
    import keras

    def clone(layer):
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


def _host(value) -> np.ndarray:
    """A device array on the host; bfloat16 comes back as float32 (numpy has no bf16 math)."""
    a = np.asarray(value)
    return a.astype(np.float32) if a.dtype.kind == "V" or a.dtype.name == "bfloat16" else a


def _as_list(outputs) -> list:
    """A sub-model's outputs as a list (Keras returns a one-output model's bare tensor)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _weights(model) -> tuple[list, list]:
    """The current (trainable, non-trainable) weight arrays, for ``stateless_call``."""
    return ([v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables])


class FusedGraphJax(FusedBase):
    """The compiled analysis graph for one model, under the Keras JAX backend.

    Args: as :class:`ml.explain.fused.FusedGraph`.

    Raises:
        ValueError: a named layer is missing.
        RuntimeError: Keras does not run on JAX.
    """

    def __init__(self, model, target_layer: str, feature_layer: str, *, tta: bool = True,
                 cam_methods=CAM_METHODS, cam_score: str = "logit", temperature: float = 1.0):
        import jax
        import keras

        if keras.backend.backend() != "jax":
            raise RuntimeError(f"FusedGraphJax needs the Keras JAX backend (KERAS_BACKEND=jax); "
                               f"Keras runs on {keras.backend.backend()!r}: use FusedGraph")
        super().__init__(model, target_layer, feature_layer, tta=tta, cam_methods=cam_methods,
                         cam_score=cam_score, temperature=temperature)
        self.head, self.tail, self._features_in_head = split_at_target(self.twin)
        # Two programs (per padded batch size): with and without the input gradient.
        self._with_saliency = jax.jit(partial(self._pass, saliency=True))
        self._without_saliency = jax.jit(partial(self._pass, saliency=False))
        self._forward = jax.jit(self._forward_pass)

    def _pass(self, head_w, tail_w, x, targets, *, saliency: bool):
        import jax
        import jax.numpy as jnp

        def head(xin):
            outs = _as_list(self.head.stateless_call(*head_w, xin, training=False)[0])
            return outs[0], outs[1:]                                     # activations, [features]?

        def tail(acts):
            outs = _as_list(self.tail.stateless_call(*tail_w, acts, training=False)[0])
            return outs[0], outs[1:]                                     # logits, [features]?

        xin = with_flips(x) if self.tta else x                           # (2N, S, S, 1)
        if saliency:
            acts, head_pullback, early = jax.vjp(head, xin, has_aux=True)
        else:
            acts, early = head(xin)                                      # (2N, h, w, K)
        logits, tail_pullback, late = jax.vjp(tail, acts, has_aux=True)  # (2N, C)
        feats = (early if self._features_in_head else late)[0]          # (2N, D)
        merged = merge_flips(logits) if self.tta else logits            # (N, C)
        predicted = jnp.argmax(merged, axis=-1).astype(jnp.int32)
        cls = jnp.where(targets >= 0, targets, predicted)               # -1 means "predicted"
        cls_all = jnp.concatenate([cls, cls]) if self.tta else cls
        d_logits = jax.grad(lambda z: explained_score(z, cls_all, self.cam_score, self.temperature))(logits)
        (grads,) = tail_pullback(d_logits)                               # (2N, h, w, K)
        input_grads = head_pullback(grads)[0] if saliency else None    # (2N, S, S, 1)
        return self._outputs(x.shape[0], logits, merged, feats, cls, acts, grads, input_grads)

    def _forward_pass(self, weights, x):
        logits, _ = self.model.stateless_call(*weights, x, training=False)
        return logits

    def __call__(self, x: np.ndarray, targets=None, *, saliency: bool = True) -> dict[str, np.ndarray]:
        """Run the fused pass; arguments and returns as :meth:`FusedGraph.__call__`."""
        import jax

        x = np.asarray(x, np.float32)
        n = len(x)
        t = np.full(n, -1, np.int32) if targets is None else np.asarray(targets, np.int32)
        size = padded_size(n)
        fn = self._with_saliency if saliency else self._without_saliency
        out = fn(_weights(self.head), _weights(self.tail), _pad(x, size), _pad(t, size, -1))
        return {k: _host(v)[:n] for k, v in jax.device_get(out).items()}

    def forward(self, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Plain logits (no TTA, no gradient) for (M, S, S, 1) inputs, in chunks."""
        x = np.asarray(x, np.float32)
        weights = _weights(self.model)
        parts = []
        for i in range(0, len(x), batch_size):
            chunk = x[i:i + batch_size]
            logits = self._forward(weights, _pad(chunk, padded_size(len(chunk))))
            parts.append(_host(logits)[:len(chunk)])
        return np.concatenate(parts) if parts else np.zeros((0, self.model.outputs[0].shape[-1]), np.float32)
