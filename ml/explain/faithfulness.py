"""Faithfulness of a map: does deleting what it points at change the model's mind?

Deletion and insertion (Petsiuk et al. 2018, RISE, https://arxiv.org/abs/1806.07421):
rank the pixels by the map, remove the top fraction f (deletion) or reveal only the top
fraction (insertion), and follow the probability of the explained class as f grows. A
faithful map makes the deletion curve fall fast (low area under it) and the insertion
curve rise fast (high area).

What "removed" means matters (Rong et al. 2022, ROAD, https://arxiv.org/abs/2202.00449):
black holes are out of distribution and leak the mask's shape, and a plain blur keeps a
bright lesion bright. Deletion here imputes every removed pixel from the *kept* pixels
around it (a normalised Gaussian convolution, sigma S/16: a cheap relative of ROAD's
linear imputation), so the removed pixels' own values are gone. Insertion starts, as in
RISE, from a blurred copy (sigma S/16) and puts the original pixels back.

Every metric is a plain callable over ``(inputs, maps, targets, model)``:

* inputs: (N, S, S) or (N, S, S, 1) prepared images in [0, 1];
* maps: (N, h, w) maps on the model-input grid (coarse CAMs are resized bilinearly);
* targets: (N,) class indices whose probability is followed;
* model: a callable mapping (M, S, S, 1) float32 to (M, C) class probabilities.

Every map is ranked within the head first (:func:`confine_to_head`): background pixels,
dark in every slice, come last for every method and for the random baseline alike.

All perturbed images of a call go through ``model`` in one batched call.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

DEFAULT_FRACTIONS = (0.05, 0.15, 0.3)
ModelFn = Callable[[np.ndarray], np.ndarray]


def _as_inputs(inputs: np.ndarray) -> np.ndarray:
    x = np.asarray(inputs, np.float32)
    x = x[..., 0] if x.ndim == 4 else x
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"inputs must be (N, S, S[, 1]), received shape {np.shape(inputs)}")
    return x


def resize_map(m: np.ndarray, size: int) -> np.ndarray:
    """(h, w) map -> (size, size) float32, bilinear (pixel-centre aligned, as cv2 does)."""
    m = np.nan_to_num(np.asarray(m, np.float32))
    return m if m.shape == (size, size) else cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)


def blurred(x: np.ndarray) -> np.ndarray:
    """(S, S) -> the insertion baseline: a Gaussian blur with sigma S / 16."""
    return cv2.GaussianBlur(np.asarray(x, np.float32), (0, 0), x.shape[0] / 16.0)


def _smooth(a: np.ndarray) -> np.ndarray:
    """Gaussian of sigma S / 16, computed on a grid 4x coarser when S >= 64 (both the
    numerator and denominator of the imputation are smooth, and this is 10x cheaper)."""
    size = a.shape[0]
    f = 4 if size >= 64 else 1
    if f == 1:
        return cv2.GaussianBlur(a, (0, 0), size / 16.0)
    small = cv2.resize(a, (a.shape[1] // f, size // f), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), size / 16.0 / f)
    return cv2.resize(small, (a.shape[1], size), interpolation=cv2.INTER_LINEAR)


def impute(x: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """(S, S) image with ``removed`` pixels refilled from the kept pixels around them.

    fill = G * (x . kept) / G * kept, a Gaussian of sigma S / 16; where no kept pixel is
    near (G * kept below 1e-3), the mean of the kept pixels.
    """
    x = np.asarray(x, np.float32)
    kept = (~removed).astype(np.float32)
    num, den = _smooth(x * kept), _smooth(kept)
    fallback = float((x * kept).sum() / kept.sum()) if kept.any() else 0.0
    fill = np.where(den > 1e-3, num / np.maximum(den, 1e-3), fallback)
    return np.where(removed, fill, x).astype(np.float32)


def pixel_order(m: np.ndarray, top: float = 1.0, seed: int = 0) -> np.ndarray:
    """Flat pixel indices, most important first, for the top fraction ``top`` of pixels.

    Ties are broken at random (fixed seed): a plain stable sort would break them in
    raster order and so delete the top rows of every flat (e.g. thresholded) region first.
    """
    m = np.asarray(m, np.float64).ravel()
    lo, hi = float(m.min()), float(m.max())
    # Normalised to [0, 1], a 1e-9 jitter reorders only exact (or negligible) ties.
    key = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    key = key + 1e-9 * np.random.default_rng(seed).random(m.size)
    k = min(m.size, max(1, int(np.ceil(top * m.size))))
    best = np.argpartition(-key, k - 1)[:k] if k < m.size else np.arange(m.size)
    return best[np.argsort(-key[best], kind="stable")]


REMOVALS = ("impute", "blur", "constant")


def removed_by(x: np.ndarray, top: np.ndarray, removal: str) -> np.ndarray:
    """(S, S) image with the ``top`` pixels removed: ``impute`` (from the kept neighbours,
    the default), ``blur`` (replaced by the blurred copy, sigma S / 16, as RISE's insertion
    baseline) or ``constant`` (the mean of the head, a flat grey patch)."""
    if removal == "impute":
        return impute(x, top)
    if removal == "blur":
        return np.where(top, blurred(x), x).astype(np.float32)
    if removal == "constant":
        head = head_foreground(x) > 0
        return np.where(top, float(x[head].mean()) if head.any() else 0.0, x).astype(np.float32)
    raise ValueError(f"removal must be one of {REMOVALS}, received: {removal!r}")


def perturbations(x: np.ndarray, m: np.ndarray, fractions: Sequence[float], mode: str,
                  removal: str = "impute") -> np.ndarray:
    """(S, S) image and map -> (K, S, S): the image with the top fractions deleted/inserted."""
    base = blurred(x) if mode == "insertion" else None
    order = pixel_order(m, top=max(fractions))
    out = np.empty((len(fractions),) + x.shape, np.float32)
    for k, f in enumerate(fractions):
        top = np.zeros(x.size, bool)
        top[order[: int(round(f * x.size))]] = True
        top = top.reshape(x.shape)
        out[k] = removed_by(x, top, removal) if mode == "deletion" else np.where(top, x, base)
    return out


def _auc(scores: np.ndarray, fractions: Sequence[float]) -> np.ndarray:
    """(..., K+1) scores over [0, *fractions] -> (...,) normalised trapezoid area in [0, 1]."""
    fr = np.concatenate([[0.0], np.asarray(fractions, np.float64)])
    widths = np.diff(fr)
    mid = 0.5 * (scores[..., 1:] + scores[..., :-1])
    return (mid * widths).sum(-1) / fr[-1]


class _CurveMetric:
    mode = ""

    def __init__(self, fractions: Sequence[float] = DEFAULT_FRACTIONS, within_head: bool = True,
                 removal: str = "impute"):
        fr = [float(f) for f in fractions]
        if not fr or any(not 0.0 < f <= 1.0 for f in fr) or sorted(fr) != fr:
            raise ValueError(f"fractions must be increasing values in (0, 1], received: {fractions}")
        if removal not in REMOVALS:
            raise ValueError(f"removal must be one of {REMOVALS}, received: {removal!r}")
        self.fractions = tuple(fr)
        self.within_head = bool(within_head)
        self.removal = removal

    def _ranking_map(self, m, x: np.ndarray) -> np.ndarray:
        m = resize_map(m, x.shape[0])
        return confine_to_head(m, x) if self.within_head else m

    def curves(self, inputs, maps, targets, model: ModelFn, base_scores=None) -> np.ndarray:
        """(N, K+1) probabilities of the target class at f = 0 and at each fraction.

        Args:
            base_scores: (N,) the probability at f = 0 for deletion, if already known
                (for insertion f = 0 is the blurred image, which is always evaluated).
        """
        x = _as_inputs(inputs)
        n, size = len(x), x.shape[1]
        targets = np.asarray(targets, int)
        batch = [perturbations(x[i], self._ranking_map(maps[i], x[i]), self.fractions, self.mode, self.removal)
                 for i in range(n)]
        need_zero = self.mode == "insertion" or base_scores is None
        if need_zero:
            zero = np.stack([blurred(xi) for xi in x]) if self.mode == "insertion" else x
            batch.append(zero)
        if n == 0:
            return np.zeros((0, len(self.fractions) + 1), np.float32)
        probs = np.asarray(model(np.concatenate(batch)[..., None]))
        k = len(self.fractions)
        pert = probs[: n * k].reshape(n, k, -1)[np.arange(n), :, targets]           # (N, K)
        zero = probs[n * k:, :][np.arange(n), targets] if need_zero else np.asarray(base_scores)
        return np.concatenate([zero[:, None], pert], axis=1).astype(np.float32)

    def __call__(self, inputs, maps, targets, model: ModelFn, base_scores=None) -> np.ndarray:
        """(N,) normalised area under the curve."""
        return _auc(self.curves(inputs, maps, targets, model, base_scores), self.fractions)


class DeletionAUC(_CurveMetric):
    """Area under the deletion curve; lower is more faithful."""

    mode = "deletion"


class InsertionAUC(_CurveMetric):
    """Area under the insertion curve; higher is more faithful."""

    mode = "insertion"


def random_maps(n: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(n, h, w) uniform random maps, as coarse as the CAMs they are compared with."""
    return np.random.default_rng(seed).random((n,) + tuple(shape), dtype=np.float32)


def head_foreground(x: np.ndarray) -> np.ndarray:
    """(S, S) prepared image -> float mask of the head (blurred intensity above 0.05)."""
    return (cv2.GaussianBlur(np.asarray(x, np.float32), (0, 0), 2.0) > 0.05).astype(np.float32)


def confine_to_head(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rank every head pixel before every background pixel, keeping the map's order inside.

    Every map, the method's and the random ones, is ranked this way, so the curves
    compare orderings *of the head*: beyond the head's share of the image every curve
    has removed the whole head, whatever the map said about the black background.
    """
    m = np.asarray(m, np.float64)
    lo, hi = float(m.min()), float(m.max())
    norm = (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)
    return np.where(head_foreground(x) > 0, 1.0 + norm, 0.0).astype(np.float32)


def random_baseline_maps(x: np.ndarray, shape: tuple[int, int], n_random: int, seed: int = 0) -> np.ndarray:
    """(n_random, S, S): coarse random maps upsampled like a CAM and confined to the head.

    Confining them to the head makes the baseline a fair opponent: a random map that
    deletes background (already dark) would change nothing and flatter every method.
    """
    size = x.shape[0]
    fg = head_foreground(x)
    return np.stack([resize_map(r, size) * fg for r in random_maps(n_random, shape, seed)])


class DeletionVsRandom:
    """Per-case deletion AUC of a map against the mean of random maps, in one model call.

    Cheap enough to run on every analysis (``len(fractions) * (1 + n_random)`` model
    calls per case, batched with the rest of the batch; the analyzer's model runs the
    flip too for a flip model, so there each call is two forward passes).

    Args:
        fractions: deletion fractions (the f = 0 point comes from ``base_scores`` or
            one extra forward pass).
        n_random: random maps averaged for the baseline.
        seed: fixes the random maps, so the same case always gets the same score.
    """

    def __init__(self, fractions: Sequence[float] = DEFAULT_FRACTIONS, n_random: int = 2, seed: int = 0):
        if n_random < 1:
            raise ValueError(f"n_random must be >= 1, received: {n_random}")
        self.deletion = DeletionAUC(fractions)
        self.n_random = int(n_random)
        self.seed = int(seed)

    def __call__(self, inputs, maps, targets, model: ModelFn, base_scores=None) -> list[dict]:
        """Returns one dict per case: map_auc, random_auc, gain (= random - map),
        score (gain / random_auc clipped to [0, 1]: 0 = no better than random, 1 = deleting
        the map's pixels removed all the class probability random deletions left),
        beats_random (map_auc < random_auc), fractions."""
        x = _as_inputs(inputs)
        n, r = len(x), self.n_random
        if n == 0:
            return []
        coarse = np.asarray(maps[0]).shape
        all_x = np.repeat(x, 1 + r, axis=0)                                      # (N(1+R), S, S)
        all_maps = []
        for i in range(n):
            all_maps.append(resize_map(maps[i], x.shape[1]))
            all_maps.extend(random_baseline_maps(x[i], coarse, r, self.seed))
        all_t = np.repeat(np.asarray(targets, int), 1 + r)
        base = None if base_scores is None else np.repeat(np.asarray(base_scores), 1 + r)
        auc = self.deletion(all_x, all_maps, all_t, model, base).reshape(n, 1 + r)
        out = []
        for a in auc:
            m, rnd = float(a[0]), float(a[1:].mean())
            score = min(1.0, max(0.0, (rnd - m) / rnd)) if rnd > 0 else 0.0
            out.append({"metric": "deletion_auc", "map_auc": round(m, 4), "random_auc": round(rnd, 4),
                        "gain": round(rnd - m, 4), "score": round(score, 4), "beats_random": bool(m < rnd),
                        "fractions": list(self.deletion.fractions)})
        return out
