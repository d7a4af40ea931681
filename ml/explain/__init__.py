"""Explanations for the classifier: Grad-CAM, Grad-CAM++, HiResCAM, guided-backprop saliency.

One algorithm per module on a shared base (:mod:`ml.explain.base_cam`); overlays
(:mod:`ml.explain.overlay`), region descriptors (:mod:`ml.explain.region`) and
faithfulness metrics (:mod:`ml.explain.faithfulness`) work on plain numpy arrays.

Importing this package does not import TensorFlow: the web process renders overlays
without it. The backend-specific classes (FusedGraph: TensorFlow; FusedGraphJax: JAX)
are resolved lazily.
"""
from __future__ import annotations

_LAZY = {
    "BaseCAM": "ml.explain.base_cam",
    "GradCAM": "ml.explain.grad_cam",
    "GradCAMPlusPlus": "ml.explain.grad_cam_plusplus",
    "HiResCAM": "ml.explain.hires_cam",
    "GuidedBackprop": "ml.explain.guided_backprop",
    "FusedGraph": "ml.explain.fused",
    "FusedGraphJax": "ml.explain.fused_jax",
    "render_overlay_png": "ml.explain.overlay",
    "render_heatmap_png": "ml.explain.overlay",
    "saliency_map": "ml.explain.saliency",
    "describe_region": "ml.explain.region",
    "DeletionAUC": "ml.explain.faithfulness",
    "InsertionAUC": "ml.explain.faithfulness",
    "DeletionVsRandom": "ml.explain.faithfulness",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ml.explain' has no attribute {name!r}")
