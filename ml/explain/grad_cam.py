"""Grad-CAM (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391).

Each channel of the target layer is weighted by the spatial mean of the class score's
gradient over it ("global-average-pooled gradients"), then the weighted channel sum
goes through a ReLU so that only evidence *for* the class remains.
"""
from __future__ import annotations

from keras import ops

from ml.explain.base_cam import BaseCAM


class GradCAM(BaseCAM):
    """Grad-CAM on a named target layer; see :class:`ml.explain.base_cam.BaseCAM`."""

    name = "gradcam"
    paper = "https://arxiv.org/abs/1610.02391"

    @staticmethod
    def channel_weights(activations, grads):
        """alpha_k = mean over (i, j) of d y_c / d A_k(i, j): (B, h, w, K) -> (B, K)."""
        return ops.mean(grads, axis=(1, 2))
