"""Grad-CAM++ (Chattopadhay et al. 2018, https://arxiv.org/abs/1710.11063).

Channel weights are a weighted sum of the positive gradients, with per-position
coefficients alpha built from second and third powers of the gradient (eq. 19 of the
paper, under its exponential-score assumption, as pytorch-grad-cam implements it). It
spreads credit over several instances of a class where Grad-CAM favours the largest.
"""
from __future__ import annotations

from keras import ops

from ml.explain.base_cam import BaseCAM


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ on a named target layer; see :class:`ml.explain.base_cam.BaseCAM`."""

    name = "gradcam_pp"
    paper = "https://arxiv.org/abs/1710.11063"

    @staticmethod
    def channel_weights(activations, grads):
        """w_k = sum_ij alpha_kij relu(g_kij): (B, h, w, K) -> (B, K)."""
        g2 = ops.square(grads)
        g3 = g2 * grads
        sum_a = ops.sum(activations, axis=(1, 2), keepdims=True)         # (B, 1, 1, K)
        alpha = ops.divide_no_nan(g2, 2.0 * g2 + sum_a * g3)              # 0 where undefined
        alpha = ops.where(ops.not_equal(grads, 0.0), alpha, ops.zeros_like(alpha))
        return ops.sum(alpha * ops.relu(grads), axis=(1, 2))
