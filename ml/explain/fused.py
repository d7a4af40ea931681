"""One compiled forward-and-backward pass: probabilities, features, Grad-CAM, Grad-CAM++
and (optionally) guided-backprop saliency for a whole batch.

The naive way runs ``model.predict`` and then a second model call under a gradient tape
for every image. Here a single ``tf.function`` over the batch does it all:

* forward: the batch and its left-right mirror, (2N, S, S, 1), through the guided twin
  of the model (:func:`ml.explain.guided_backprop.guided_clone`; the same weights and the
  same forward arithmetic as the model, and measured as fast), reading logits,
  penultimate features and the target layer's activations;
* TTA as in :mod:`ml.model.predict`: logits and features are the mean of the two halves, the
  class explained is the argmax of the merged logits;
* backward, once: the gradient of the explained class's score (its logit, or its
  calibrated log-probability: metadata ``cam_score``; summed over the batch;
  samples are independent in inference mode) with respect to the target activations,
  and, when saliency is wanted, with respect to the input pixels too;
* every CAM method's hook (:meth:`BaseCAM.channel_weights`) on those gradients, and the
  mirror half's maps flipped back and averaged with the image half's.

TensorFlow backend; :class:`ml.explain.fused_jax.FusedGraphJax` is the same pass under JAX.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ml.explain.base_cam import explained_score
from ml.explain.fused_base import CAM_METHODS, FusedBase
from ml.model.predict import merge_flips, with_flips


class FusedGraph(FusedBase):
    """The compiled analysis graph for one model, under TensorFlow.

    Arguments and errors as :class:`ml.explain.fused_base.FusedBase`.
    """

    def __init__(self, model, target_layer: str, feature_layer: str, *, tta: bool = True,
                 cam_methods=CAM_METHODS, cam_score: str = "logit", temperature: float = 1.0):
        super().__init__(model, target_layer, feature_layer, tta=tta, cam_methods=cam_methods,
                         cam_score=cam_score, temperature=temperature)
        spec = [tf.TensorSpec([None, self.size, self.size, 1], tf.float32),
                tf.TensorSpec([None], tf.int32)]
        # Two traces, fixed for any batch size: with and without the input gradient
        # (the backward pass down to the pixels costs about a forward pass).
        self._with_saliency = tf.function(lambda x, t: self._pass(x, t, True),
                                          input_signature=spec)
        self._without_saliency = tf.function(lambda x, t: self._pass(x, t, False),
                                             input_signature=spec)
        self._forward = tf.function(lambda x: self.model(x, training=False),
                                    input_signature=spec[:1])

    def _pass(self, x, targets, saliency: bool):
        xin = with_flips(x) if self.tta else x                          # (2N, S, S, 1)
        with tf.GradientTape() as tape:
            if saliency:
                tape.watch(xin)
            logits, acts, feats = self.twin(xin, training=False)       # (2N, C), (2N, h, w, K), (2N, D)
            merged = merge_flips(logits) if self.tta else logits       # (N, C)
            predicted = tf.argmax(merged, axis=-1, output_type=tf.int32)
            cls = tf.where(targets >= 0, targets, predicted)           # -1 means "predicted"
            cls_all = tf.concat([cls, cls], 0) if self.tta else cls
            score = explained_score(logits, cls_all, self.cam_score, self.temperature)
        sources = [acts, xin] if saliency else [acts]
        grads = tape.gradient(score, sources)
        return self._outputs(tf.shape(x)[0], logits, merged, feats, cls, acts, grads[0],
                             grads[1] if saliency else None)

    def __call__(self, x: np.ndarray, targets=None, *, saliency: bool = True) -> dict[str, np.ndarray]:
        """Run the fused pass.

        Args:
            x: (N, S, S, 1) float32 prepared inputs.
            targets: (N,) class indices to explain; None (or -1) for the predicted class.
            saliency: also return the guided-backprop ``input_gradients`` (N, S, S, 1).

        Returns:
            numpy arrays: ``logits`` (N, C) TTA-merged, ``logits_plain`` (N, C) of the
            unflipped image alone, ``features`` (N, D), ``classes`` (N,), one (N, h, w)
            raw map per CAM method name (e.g. ``gradcam``, ``gradcam_pp``).
        """
        x = np.asarray(x, np.float32)
        t = np.full(len(x), -1, np.int32) if targets is None else np.asarray(targets, np.int32)
        fn = self._with_saliency if saliency else self._without_saliency
        return {k: v.numpy() for k, v in fn(tf.constant(x), tf.constant(t)).items()}

    def forward(self, x: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Plain logits (no TTA, no gradient) for (M, S, S, 1) inputs, in chunks."""
        x = np.asarray(x, np.float32)
        parts = [self._forward(tf.constant(x[i:i + batch_size])).numpy()
                 for i in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.model.outputs[0].shape[-1]), np.float32)
