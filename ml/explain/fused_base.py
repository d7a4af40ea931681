"""What both fused analyses share, with no backend import: checks, settings and the twin.

:class:`ml.explain.fused.FusedGraph` (TensorFlow) and
:class:`ml.explain.fused_jax.FusedGraphJax` (JAX) compile the same pass in their
backend's way; everything before the compilation lives here once.
"""
from __future__ import annotations

from ml.explain.base_cam import check_cam_score, find_layer
from ml.explain.grad_cam import GradCAM
from ml.explain.grad_cam_plusplus import GradCAMPlusPlus
from ml.explain.guided_backprop import guided_clone
from ml.model.predict import merge_flipped_maps, merge_flips

CAM_METHODS = (GradCAM, GradCAMPlusPlus)


class FusedBase:
    """Validate the names and settings, and build the guided twin of the model.

    Args:
        model: Keras model (N, S, S, 1) in [0, 1] -> (N, C) logits.
        target_layer: Grad-CAM layer name (metadata ``target_layer``).
        feature_layer: penultimate layer name (metadata ``feature_layer``), for the guard.
        tta: average over the left-right flip (metadata ``tta == "hflip"``).
        cam_methods: BaseCAM subclasses evaluated in the graph.
        cam_score: what the maps explain, ``logit`` or ``log_prob``.
        temperature: the calibration temperature, for ``log_prob``.

    Raises:
        ValueError: a named layer is missing, or an unknown ``cam_score``.
    """

    def __init__(self, model, target_layer: str, feature_layer: str, *, tta: bool = True,
                 cam_methods=CAM_METHODS, cam_score: str = "logit", temperature: float = 1.0):
        find_layer(model, target_layer)
        find_layer(model, feature_layer)
        self.cam_score = check_cam_score(cam_score)
        self.temperature = float(temperature)
        self.model = model
        self.size = int(model.inputs[0].shape[1])
        self.tta = bool(tta)
        self.cam_methods = tuple(cam_methods)
        self.twin, self.n_guided = guided_clone(model, record=(target_layer, feature_layer),
                                                upstream_of=target_layer)

    def _outputs(self, n, logits, merged, feats, cls, acts, act_grads, input_grads=None) -> dict:
        """The pass's result from its tensors (either backend): TTA halves merged, one map per
        CAM method, and the input gradients when saliency was asked for.

        Args:
            n: images in the batch (the mirror half follows them when ``tta``).
            logits, feats, acts, act_grads, input_grads: (2N, ...) with TTA, else (N, ...).
            merged: (N, C) TTA-merged logits; cls: (N,) explained classes.
        """
        out = {
            "logits": merged,
            "logits_plain": logits[:n],                                 # image half only (no TTA)
            "features": merge_flips(feats) if self.tta else feats,
            "classes": cls,
        }
        for method in self.cam_methods:
            cam = method.cam_from_gradients(acts, act_grads)           # (2N, h, w)
            out[method.name] = merge_flipped_maps(cam) if self.tta else cam
        if input_grads is not None:                                     # (2N, S, S, 1)
            out["input_gradients"] = merge_flipped_maps(input_grads) if self.tta else input_grads
        return out
