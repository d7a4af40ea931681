"""Input guard: is this image a brain MRI slice at all?

Two kinds of evidence, each turned into a score where 1.0 is the rejection threshold:

* feature distance: the Mahalanobis distance (Lee et al. 2018,
  https://arxiv.org/abs/1807.03888) of the penultimate features to the nearest class
  mean, with one covariance shared by the classes, fitted on the training split;
* image statistics a brain slice always shows: grey pixels, a dark background around
  the head, smooth anatomy rather than noise or print, and some contrast at all.

The guard's score is the largest of these; above 1.0 the image is ``not_brain_mri``.
Thresholds come from the training and validation distributions (metadata.json).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Which image statistics are bounded on which side, and what a person is told.
_STAT_CHECKS = {
    "contrast": ("low", "the image is blank or has almost no contrast"),
    "dark_fraction": ("low", "no dark background around the head, as brain MRI slices have"),
    "edge_energy": ("high", "the image is dominated by fine texture, noise or print"),
    "colourfulness": ("high", "the image is in colour; MRI slices are grey"),
}
# Absolute floor/ceiling for colourfulness: greyscale JPEGs of MRI sit near 0.
_COLOUR_LIMIT = 0.06
_SCORE_CAP = 100.0
# DICOM modalities that can hold a brain MRI slice: MR itself, and secondary captures /
# "other", which carry screenshots of MR as often as anything else.
_MODALITIES_ACCEPTED = {"MR", "OT", "SC", ""}


@dataclass
class GuardVerdict:
    """in_distribution: False means "not a brain MRI slice"; reasons say why."""

    in_distribution: bool
    score: float
    components: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"in_distribution": self.in_distribution, "score": round(float(self.score), 4),
                "components": {k: round(float(v), 4) for k, v in self.components.items()},
                "reasons": list(self.reasons)}


def image_stats(x: np.ndarray, meta: dict | None = None) -> dict[str, float]:
    """Cheap statistics of the prepared (S, S) input (the same array in training and use)."""
    x = np.asarray(x, np.float32)
    lap = cv2.Laplacian(x, cv2.CV_32F, ksize=3)
    return {
        "contrast": float(np.percentile(x, 99) - np.percentile(x, 1)),
        "dark_fraction": float(np.mean(x < 0.08)),
        "edge_energy": float(np.mean(np.abs(lap))),
        "colourfulness": float((meta or {}).get("colourfulness", 0.0)),
    }


class InputGuard:
    """Fitted guard; build with :meth:`fit` or :meth:`from_metadata`."""

    def __init__(self, means: np.ndarray, precision: np.ndarray, maha_threshold: float,
                 stat_bounds: dict[str, float]):
        self.means = np.asarray(means, np.float64)          # (C, D)
        self.precision = np.asarray(precision, np.float64)  # (D, D)
        self.maha_threshold = float(maha_threshold)
        self.stat_bounds = dict(stat_bounds)

    # ---- fitting -----------------------------------------------------------------
    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, stats: list[dict],
            val_features: np.ndarray, val_stats: list[dict], quantile: float = 0.995,
            shrinkage: float = 0.1) -> "InputGuard":
        """Fit class means and a shared, shrunk covariance; set thresholds.

        The Mahalanobis threshold is the ``quantile`` of validation scores, so about
        (1 - quantile) of in-distribution validation images are rejected by it. Image
        statistic bounds sit outside the whole training range, with a margin.
        """
        feats = np.asarray(features, np.float64)
        classes = np.unique(labels)
        means = np.stack([feats[labels == c].mean(0) for c in classes])
        centred = feats - means[np.searchsorted(classes, labels)]
        cov = centred.T @ centred / max(len(feats) - len(classes), 1)
        cov = (1 - shrinkage) * cov + shrinkage * np.eye(len(cov)) * np.trace(cov) / len(cov)
        precision = np.linalg.inv(cov)
        guard = cls(means, precision, 1.0, {})
        guard.maha_threshold = float(np.quantile(guard.mahalanobis(val_features), quantile))
        cols = {k: np.array([s[k] for s in stats + val_stats]) for k in _STAT_CHECKS}
        bounds = {
            "contrast": 0.5 * float(np.min(cols["contrast"])),
            "dark_fraction": 0.5 * float(np.min(cols["dark_fraction"])),
            "edge_energy": 1.5 * float(np.max(cols["edge_energy"])),
            "colourfulness": max(_COLOUR_LIMIT, 1.5 * float(np.max(cols["colourfulness"]))),
        }
        guard.stat_bounds = bounds
        return guard

    def to_metadata(self) -> dict:
        return {"method": "mahalanobis-tied+image-stats", "means": self.means.tolist(),
                "precision": self.precision.tolist(), "maha_threshold": self.maha_threshold,
                "stat_bounds": self.stat_bounds}

    @classmethod
    def from_metadata(cls, meta: dict) -> "InputGuard":
        return cls(np.array(meta["means"]), np.array(meta["precision"]),
                   meta["maha_threshold"], meta["stat_bounds"])

    # ---- scoring -----------------------------------------------------------------
    def mahalanobis(self, features: np.ndarray) -> np.ndarray:
        """(N, D) -> (N,) squared distance to the nearest class mean."""
        f = np.atleast_2d(np.asarray(features, np.float64))
        d = f[:, None, :] - self.means[None, :, :]                    # (N, C, D)
        m = np.einsum("ncd,de,nce->nc", d, self.precision, d)         # (N, C)
        return m.min(axis=1)

    def components(self, features: np.ndarray, stats: dict[str, float]) -> dict[str, float]:
        """Per-check scores; each > 1.0 means that check rejects."""
        comp = {"features": float(self.mahalanobis(features)[0] / self.maha_threshold)}
        for key, (side, _msg) in _STAT_CHECKS.items():
            bound = max(self.stat_bounds[key], 1e-9)
            comp[key] = bound / max(stats[key], 1e-9) if side == "low" else stats[key] / bound
        # Cap so a blank image does not read as "a billion times too blank".
        return {k: min(v, _SCORE_CAP) for k, v in comp.items()}

    def assess(self, image: np.ndarray, x: np.ndarray, features: np.ndarray,
               logits: np.ndarray | None = None, meta: dict | None = None) -> GuardVerdict:
        """Judge one image.

        Args:
            image: the original (H, W) grey image in [0, 1]; today every check reads
                the prepared input, which training saw too, so this is informational.
            x: the prepared (S, S) model input.
            features: (D,) penultimate features (TTA-averaged, as in ml.model.predict).
            logits: unused today; kept so energy-style scores can join without an API change.
            meta: reader metadata (``colourfulness`` for raster images).
        """
        comp = self.components(features, image_stats(x, meta))
        reasons = [msg for key, (_s, msg) in _STAT_CHECKS.items() if comp[key] > 1.0]
        modality = str((meta or {}).get("modality") or "").upper()
        if modality not in _MODALITIES_ACCEPTED:
            comp["modality"] = _SCORE_CAP
            reasons.append(f"the DICOM file says its modality is {modality}, not MR")
        if comp["features"] > 1.0:
            reasons.append("the model's features are unlike any brain MRI it was trained on")
        score = max(comp.values())
        return GuardVerdict(score <= 1.0, score, comp, reasons)
