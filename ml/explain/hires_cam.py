"""HiResCAM (Draelos & Carin 2020, https://arxiv.org/abs/2011.08891).

Grad-CAM weighs every channel by the *spatial mean* of its gradient, then spreads that
weight over the whole channel. HiResCAM keeps the gradient where it is: the map is the
element-wise product of gradient and activation, summed over the channels (then a ReLU,
as for Grad-CAM), so a position is hot only when the score depends on the activation
*there*.

For a head that averages the target layer (GlobalAveragePooling then linear layers) the
two are the same map. For a head that takes the *maximum* (Xception's ``head_gmp``) they
are not: the score sees each channel only at its peak, and Grad-CAM still paints the
channel's whole activation pattern. HiResCAM then gives each position exactly its
first-order share of the score.
"""
from __future__ import annotations

from keras import ops

from ml.explain.base_cam import BaseCAM


class HiResCAM(BaseCAM):
    """HiResCAM on a named target layer; see :class:`ml.explain.base_cam.BaseCAM`."""

    name = "hirescam"
    paper = "https://arxiv.org/abs/2011.08891"

    @classmethod
    def cam_from_gradients(cls, activations, grads):
        """(B, h, w, K), (B, h, w, K) -> (B, h, w): ReLU of sum_k g_k(i, j) A_k(i, j)."""
        return ops.relu(ops.sum(grads * activations, axis=-1))
