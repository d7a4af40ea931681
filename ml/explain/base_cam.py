"""The shared base of the class-activation-map methods (Grad-CAM, Grad-CAM++).

A CAM method differs from another only in how it weighs the channels of the target
layer (:meth:`BaseCAM.channel_weights`); everything else lives here, in the shape of
pytorch-grad-cam's ``base_cam.py``: find the target layer by name, one forward pass with
a gradient tape, the left-right-flip test-time augmentation (the helpers of
:mod:`ml.model.predict`), and the mapping back onto the original image with no shift.

The hooks, like the flip helpers, are written in ``keras.ops``, so one formula serves both
compiled passes: :class:`ml.explain.fused.FusedGraph` (TensorFlow) and
:class:`ml.explain.fused_jax.FusedGraphJax` (JAX). This module's own ``__call__`` is the
plain, unfused reference the tests compare the fused pass against; it needs the
TensorFlow backend, and TensorFlow is imported only when a BaseCAM is built.
"""
from __future__ import annotations

import numpy as np
from keras import ops

from ml.model.predict import merge_flipped_maps, merge_flips, with_flips
from ml.model.preprocess import Prepared, prepare, unprepare_map


def find_layer(model, name: str):
    """The layer of ``model`` called ``name``.

    Raises:
        ValueError: no such layer (the message lists the last few layer names, which
            is where a target layer usually is).
    """
    try:
        return model.get_layer(name)
    except ValueError:
        tail = [layer.name for layer in model.layers[-8:]]
        raise ValueError(
            f"model {model.name!r} has no layer named {name!r}; its last layers are {tail}. "
            "Grad-CAM finds its target layer by the name stored in metadata.json "
            "('target_layer'); layers inside a nested sub-model are not supported."
        ) from None


def require_tensorflow(what: str) -> None:
    """Raise NotImplementedError unless Keras runs on TensorFlow (the unfused references)."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise NotImplementedError(
            f"{what} is the unfused TensorFlow reference; Keras runs on {backend!r} here. "
            "Use ml.explain.fused_jax.FusedGraphJax (or ml.analysis.analyzer.Analyzer) instead.")


CAM_SCORES = ("logit", "log_prob")


def check_cam_score(score: str) -> str:
    """``score`` if it names a known map target (:data:`CAM_SCORES`), else ValueError."""
    if score not in CAM_SCORES:
        raise ValueError(f"cam score must be one of {CAM_SCORES}, received: {score!r}")
    return score


def explained_score(logits, cls, score: str = "logit", temperature: float = 1.0):
    """The scalar whose gradient every map follows: summed over the batch.

    * ``logit``: the explained class's logit, as in Selvaraju et al.
    * ``log_prob``: the log of its calibrated probability, ``log softmax(logits / T)``.
      Its gradient is ``sum_j p_j (grad z_c - grad z_j)`` over the other classes j:
      the map shows where class c beats the alternatives the model weighs, not where
      every class's evidence is (a contrastive map). It follows the quantity that a
      deletion test and the report show: the calibrated probability.

    Samples are independent in inference mode, so the gradient of the sum gives every
    sample's own gradient in one backward pass.
    """
    if score == "logit":
        picked = logits
    elif check_cam_score(score) == "log_prob":
        picked = ops.log_softmax(logits / temperature, axis=-1)
    # (B, C), (B,) -> (B, 1): each sample's own class, then the batch sum.
    return ops.sum(ops.take_along_axis(picked, ops.expand_dims(cls, -1), axis=-1))


def normalise_map(m: np.ndarray) -> np.ndarray:
    """Min-max scale a map to float32 [0, 1]; a flat (or empty) map becomes zeros."""
    m = np.nan_to_num(np.asarray(m, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(m.min()), float(m.max())) if m.size else (0.0, 0.0)
    if hi - lo <= 1e-12:
        return np.zeros_like(m, dtype=np.float32)
    return ((m - lo) / (hi - lo)).astype(np.float32)


def to_original(coarse: np.ndarray, prepared: Prepared) -> np.ndarray:
    """Map a (h, w) map over the model input onto the original (H, W) image, in [0, 1].

    The map is min-max normalised, resized straight onto the head crop and pasted back
    (ml.model.preprocess.unprepare_map undoes crop and resize with no shift); pixels outside
    the crop are 0. The result is rescaled so that its peak is exactly 1.
    """
    heat = unprepare_map(normalise_map(coarse), prepared)
    peak = float(heat.max()) if heat.size else 0.0
    if peak <= 0.0:
        return np.zeros(prepared.original_shape, np.float32)
    return np.clip(heat / peak, 0.0, 1.0).astype(np.float32)


class BaseCAM:
    """A class-activation-map method; subclasses override :meth:`channel_weights`.

    Args:
        model: a Keras model mapping (N, S, S, 1) images in [0, 1] to (N, C) logits.
        target_layer: name of the convolutional layer whose activations are weighed
            (metadata.json ``target_layer``).
        tta: follow ml.model.predict's left-right-flip convention (image + mirror, the
            mirror's map flipped back, the two averaged).
        score: what the map explains, ``logit`` or ``log_prob`` (:func:`explained_score`).
        temperature: the calibration temperature for ``log_prob``.

    Raises:
        ValueError: the model has no layer called ``target_layer``.
    """

    name = "base"
    paper = ""

    def __init__(self, model, target_layer: str, *, tta: bool = True, score: str = "logit",
                 temperature: float = 1.0):
        import keras

        require_tensorflow(type(self).__name__)
        import tensorflow as tf

        layer = find_layer(model, target_layer)
        self.score = check_cam_score(score)
        self.temperature = float(temperature)
        self.model = model
        self.target_layer = target_layer
        self.tta = bool(tta)
        # (batch, h, w, channels) activations and (batch, C) logits from one forward pass.
        self._grad_model = keras.Model(model.inputs[0], [layer.output, model.outputs[0]],
                                       name=f"{model.name}_{self.name}")
        self._compiled = tf.function(
            self._raw_maps, reduce_retracing=True,
            input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32),
                             tf.TensorSpec([None], tf.int32)])

    @classmethod
    def from_metadata(cls, model, metadata: dict) -> "BaseCAM":
        """Build with the target layer and TTA convention recorded in metadata.json."""
        from ml.model.builders import target_layer

        name = metadata.get("target_layer") or target_layer(metadata.get("arch", "cnn"))
        return cls(model, name, tta=metadata.get("tta") == "hflip",
                   score=metadata.get("cam_score", "logit"),
                   temperature=float(metadata.get("temperature", 1.0)))

    # ---- the hook ------------------------------------------------------------------
    @staticmethod
    def channel_weights(activations, grads):
        """(B, h, w, K) activations and d score / d activations -> (B, K) channel weights.

        Written in ``keras.ops`` (any backend's tensors, inside a compiled pass).
        """
        raise NotImplementedError

    @classmethod
    def cam_from_gradients(cls, activations, grads):
        """(B, h, w, K), (B, h, w, K) -> (B, h, w): ReLU of the weighted channel sum."""
        weights = cls.channel_weights(activations, grads)                 # (B, K)
        return ops.relu(ops.einsum("bhwk,bk->bhw", activations, weights))

    # ---- the unfused reference pass (TensorFlow) -----------------------------------
    def _raw_maps(self, x, targets):
        import tensorflow as tf

        xin = with_flips(x) if self.tta else x                            # (2N, S, S, 1)
        with tf.GradientTape() as tape:
            acts, logits = self._grad_model(xin, training=False)          # (2N, h, w, K), (2N, C)
            merged = merge_flips(logits) if self.tta else logits          # (N, C)
            predicted = tf.argmax(merged, axis=-1, output_type=tf.int32)
            cls = tf.where(targets >= 0, targets, predicted)              # -1 means "predicted"
            cls_all = tf.concat([cls, cls], 0) if self.tta else cls
            score = explained_score(logits, cls_all, self.score, self.temperature)
        grads = tape.gradient(score, acts)                                # (2N, h, w, K)
        cams = self.cam_from_gradients(acts, grads)                       # (2N, h, w)
        if self.tta:
            cams = merge_flipped_maps(cams)
        return cams, cls

    def __call__(self, x: np.ndarray, targets=None) -> tuple[np.ndarray, np.ndarray]:
        """Coarse maps for a batch of prepared inputs.

        Args:
            x: (N, S, S) or (N, S, S, 1) float32 in [0, 1] (ml.model.preprocess.prepare outputs).
            targets: (N,) class indices to explain, or None for the predicted class.

        Returns:
            maps (N, h, w) float32 in [0, 1] (min-max per map) and the explained class (N,).
        """
        import tensorflow as tf

        x = np.asarray(x, np.float32)
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] != 1:
            raise ValueError(f"expected (N, S, S[, 1]) inputs, received shape {x.shape}")
        t = np.full(len(x), -1, np.int32) if targets is None else np.asarray(targets, np.int32)
        cams, cls = self._compiled(tf.constant(x), tf.constant(t))
        return np.stack([normalise_map(c) for c in cams.numpy()]) if len(x) else cams.numpy(), cls.numpy()

    def explain(self, image: np.ndarray, target: int | None = None) -> np.ndarray:
        """Map for one original (H, W) image in [0, 1], on the original: (H, W) in [0, 1]."""
        size = int(self._grad_model.inputs[0].shape[1])
        prepared = prepare(image, size)
        maps, _ = self(prepared.x[None], None if target is None else [target])
        return to_original(maps[0], prepared)
