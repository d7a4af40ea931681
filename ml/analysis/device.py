"""What the Analyzer's compiled calls depend on the device for: how many input pixels a
call may hold, and whether the JAX graph computes in bfloat16."""
from __future__ import annotations

import os

CPU_PIXEL_BUDGET = 64 * 160 * 160      # input pixels per compiled call that fit 24 GB of host memory
_PIXELS_PER_GIB = CPU_PIXEL_BUDGET / 24


def default_pixel_budget() -> int:
    """Input pixels per compiled call for the Keras backend's device: ``CPU_PIXEL_BUDGET``
    on the CPU (and under TensorFlow), 80% of an accelerator's memory at the CPU's pixels
    per GiB under JAX (an H200's 139 GiB: about 96 Xception slices of 299 px a call)."""
    import keras

    if keras.backend.backend() != "jax":
        return CPU_PIXEL_BUDGET
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return CPU_PIXEL_BUDGET
    stats = device.memory_stats() or {}
    gib = stats.get("bytes_limit", 0) / 2 ** 30
    return max(CPU_PIXEL_BUDGET, int(0.8 * gib * _PIXELS_PER_GIB))


# bfloat16 against float32 on the same inputs (tests/ml/test_bf16_jax.py): the same class,
# Grad-CAM maps ([0, 1]) and calibrated probabilities within these absolute differences.
BF16_TOLERANCE = {"gradcam": 0.05, "probabilities": 0.02}


def use_bfloat16() -> bool:
    """Whether the JAX graph computes in bfloat16: ``BRAINAI_BF16`` 1 or 0, or by default
    on an accelerator only (on the CPU XLA's bfloat16 convolutions are no faster)."""
    flag = os.environ.get("BRAINAI_BF16", "auto").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    import jax

    return jax.devices()[0].platform != "cpu"
