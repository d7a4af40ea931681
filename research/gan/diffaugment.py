"""Differentiable augmentation for data-efficient GAN training (Zhao et al. 2020).

Paper: https://arxiv.org/abs/2006.10738

The same kind of random transform is applied to real and generated images before the
discriminator sees them, and gradients flow through it to the generator, so the
discriminator cannot memorise ~5k training slices while the generator never learns to
produce the augmentations. Policy for grey MRI: brightness, contrast, translation
(1/8 of the side, filled with background) and cutout (half the side).

The random draws come from a host-side numpy Generator (:func:`draw`) and enter the
graph as plain arrays, so the step stays a pure function on every backend (no Keras
SeedGenerator state to thread through JAX) and a seed reproduces a run exactly.
"""
from __future__ import annotations

import numpy as np
from keras import ops

POLICY = ("color", "translation", "cutout")


def draw(rng: np.random.Generator, batch: int, size: int, policy=POLICY,
         translation: float = 0.125, cutout: float = 0.5) -> dict[str, np.ndarray]:
    """Random parameters for one batch.

    Returns:
        Dict of float32 arrays, each (batch,): brightness, contrast, shift_y, shift_x,
        cut_y, cut_x, cut_half (pixels). Parts of the policy that are off get identity values.
    """
    p = {
        "brightness": np.zeros(batch, np.float32), "contrast": np.ones(batch, np.float32),
        "shift_y": np.zeros(batch, np.float32), "shift_x": np.zeros(batch, np.float32),
        "cut_y": np.zeros(batch, np.float32), "cut_x": np.zeros(batch, np.float32),
        "cut_half": np.zeros(batch, np.float32),
    }
    if "color" in policy:
        p["brightness"] = rng.uniform(-0.5, 0.5, batch).astype(np.float32)
        p["contrast"] = rng.uniform(0.5, 1.5, batch).astype(np.float32)
    if "translation" in policy:
        m = int(size * translation)
        p["shift_y"] = rng.integers(-m, m + 1, batch).astype(np.float32)
        p["shift_x"] = rng.integers(-m, m + 1, batch).astype(np.float32)
    if "cutout" in policy:
        p["cut_y"] = rng.integers(0, size, batch).astype(np.float32)
        p["cut_x"] = rng.integers(0, size, batch).astype(np.float32)
        p["cut_half"] = np.full(batch, size * cutout / 2, np.float32)
    return p


def _shift_matrix(shift, size: int):
    """(B,) integer-valued shifts -> (B, size, size) 0/1 matrices M with (M @ v)[i] = v[i - shift]."""
    i = ops.arange(size, dtype="float32")
    return ops.cast(ops.equal(i[None, None, :], i[None, :, None] - shift[:, None, None]), "float32")


def augment(x, p: dict):
    """Apply the drawn transform to a batch.

    Args:
        x: (B, S, S, 1) images in [-1, 1] (background -1).
        p: the dict from :func:`draw` for this batch.

    Returns:
        (B, S, S, 1), differentiable with respect to x.
    """
    size = x.shape[1]
    # Colour: brightness shift and contrast about the per-image mean.
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * p["contrast"][:, None, None, None] + mean + p["brightness"][:, None, None, None]
    # Translation as two batched 0/1 matmuls; working on x + 1 makes the fill background (-1).
    x1 = x + 1.0
    x1 = ops.einsum("bij,bjwc->biwc", _shift_matrix(p["shift_y"], size), x1)
    x1 = ops.einsum("bij,bhjc->bhic", _shift_matrix(p["shift_x"], size), x1)
    # Cutout: a square of side 2 * cut_half around (cut_y, cut_x), filled with background.
    i = ops.arange(size, dtype="float32")
    in_y = ops.abs(i[None, :] - p["cut_y"][:, None]) < p["cut_half"][:, None]     # (B, S)
    in_x = ops.abs(i[None, :] - p["cut_x"][:, None]) < p["cut_half"][:, None]
    keep = 1.0 - ops.cast(ops.logical_and(in_y[:, :, None], in_x[:, None, :]), "float32")
    return x1 * keep[..., None] - 1.0
