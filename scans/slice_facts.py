"""What a reviewer is told about a slice beside its label, for the report page, the print
view and the API alike: the Grad-CAM map's faithfulness check and the input guard's verdict.

Pure reads of an Analysis (a live row or a signed snapshot's FrozenAnalysis): no database,
no writes. The numbers are the ones ml stores (docs/explainability.md, "Faithfulness";
ml/guard/input_guard.py): the deletion AUC of the map against the mean of random maps,
and the guard's score, where 1.0 is the rejection threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

from scans.models import Label

# Shown, word for word, when the key slice's map does no better than random maps.
HEATMAP_WARNING = "This heatmap may not show what drove the result"

# The input guard rejects above this score (ml.guard.input_guard: "1.0 is the rejection threshold").
GUARD_THRESHOLD = 1.0
GUARD_REJECTED = "rejected by the input guard"
GUARD_ACCEPTED = "accepted by the input guard"
# The guard's checks (GuardVerdict.components), in words.
GUARD_CHECKS = {
    "features": "feature distance from the training images",
    "contrast": "too little contrast",
    "dark_fraction": "no dark background",
    "edge_energy": "fine texture or print",
    "colourfulness": "colour",
    "modality": "DICOM modality",
}


def _float(value) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class FaithfulnessCheck:
    """The per-case check (ml.explain.faithfulness.DeletionVsRandom) as stored on an Analysis."""

    map_auc: float | None
    random_auc: float | None
    gain: float | None
    score: float | None          # Analysis.faithfulness_score: gain / random_auc in [0, 1]
    beats_random: bool | None    # None: the stored check lacks the numbers to say
    fractions: tuple[float, ...]
    metric: str

    @property
    def no_better_than_random(self) -> bool:
        return self.beats_random is False

    def numbers(self) -> str:
        """'deletion AUC 0.68 for the map against 0.64 for random maps'."""
        if self.map_auc is None or self.random_auc is None:
            return "the stored check has no AUCs"
        return f"deletion AUC {self.map_auc:.2f} for the map against {self.random_auc:.2f} for random maps"

    def why(self) -> str:
        """One line for the warning: what the numbers say, in words."""
        share = _fractions_text(self.fractions)
        return (f"Deleting the {share} of pixels the Grad-CAM map ranks highest lowered the model's probability "
                f"no more than deleting random pixels did ({self.numbers()}; lower is better).")

    def summary(self) -> str:
        """The per-slice line: 'beats random maps (deletion AUC 0.21 vs 0.83)'."""
        if self.map_auc is None or self.random_auc is None:
            verdict = {True: "beats random maps", False: "no better than random maps"}.get(self.beats_random,
                                                                                            "incomplete check")
            return verdict
        auc = f"deletion AUC {self.map_auc:.2f} vs {self.random_auc:.2f} random"
        return f"{'beats' if self.beats_random else 'no better than'} random maps ({auc})"

    def as_api(self) -> dict:
        return {"metric": self.metric, "map_auc": self.map_auc, "random_auc": self.random_auc, "gain": self.gain,
                "score": self.score, "beats_random": self.beats_random, "fractions": list(self.fractions)}


def _fractions_text(fractions) -> str:
    if not fractions:
        return "share"
    pcts = [f"{round(100 * f):d}%" for f in fractions]
    return pcts[0] if len(pcts) == 1 else f"{pcts[0]}–{pcts[-1]}"


def faithfulness_check(analysis) -> FaithfulnessCheck | None:
    """The stored check, or None when it was not computed (the detail pass has not run)."""
    if not analysis or analysis.faithfulness is None:  # templates pass "" for a slice not analysed
        return None
    f = analysis.faithfulness if isinstance(analysis.faithfulness, dict) else {}
    map_auc, random_auc = _float(f.get("map_auc")), _float(f.get("random_auc"))
    beats = f.get("beats_random")
    if not isinstance(beats, bool):
        beats = (map_auc < random_auc) if map_auc is not None and random_auc is not None else None
    fractions = tuple(x for x in (_float(v) for v in f.get("fractions") or ()) if x is not None)
    return FaithfulnessCheck(map_auc=map_auc, random_auc=random_auc, gain=_float(f.get("gain")),
                             score=analysis.faithfulness_score, beats_random=beats, fractions=fractions,
                             metric=str(f.get("metric") or "deletion_auc"))


@dataclass(frozen=True)
class KeySliceHeatmap:
    """The key slice's map as the report states it: checked or not, and the warning if any."""

    scan_id: int | None
    computed: bool
    check: FaithfulnessCheck | None

    @property
    def warning(self) -> str | None:
        return HEATMAP_WARNING if self.check is not None and self.check.no_better_than_random else None

    def as_api(self) -> dict:
        return {"scan": self.scan_id, "detail": "computed" if self.computed else "not computed",
                "faithfulness_check": self.check.as_api() if self.check else None,
                "warning": ({"text": self.warning, "why": self.check.why()} if self.warning else None)}


def key_slice_heatmap(report, slices) -> KeySliceHeatmap | None:
    """The key slice's check among ``slices`` (live rows or a snapshot's); None without a key slice."""
    key = next((s for s in slices if s.pk == report.key_scan_id), None) if report.key_scan_id else None
    analysis = getattr(key, "analysis", None) if key is not None else None
    if not analysis:
        return None
    check = faithfulness_check(analysis)
    return KeySliceHeatmap(scan_id=key.pk, computed=check is not None, check=check)


@dataclass(frozen=True)
class GuardVerdict:
    """The input guard's verdict on a slice (Analysis.guard, ml.guard.input_guard.GuardVerdict.as_dict)."""

    rejected: bool
    score: float | None
    components: dict
    reasons: tuple[str, ...]

    @property
    def verdict(self) -> str:
        return GUARD_REJECTED if self.rejected else GUARD_ACCEPTED

    @property
    def strongest(self) -> str:
        """The check that gave the score, in words ('' when none is stored)."""
        comps = {k: v for k, v in self.components.items() if _float(v) is not None}
        if not comps:
            return ""
        key = max(comps, key=lambda k: float(comps[k]))
        return GUARD_CHECKS.get(key, key.replace("_", " "))

    def score_text(self) -> str:
        """'guard score 3.42 (rejects above 1.00)'."""
        if self.score is None:
            return "no guard score stored"
        return f"guard score {self.score:.2f} (rejects above {GUARD_THRESHOLD:.2f})"

    def as_api(self) -> dict:
        return {"verdict": "rejected" if self.rejected else "accepted", "score": self.score,
                "threshold": GUARD_THRESHOLD, "components": dict(self.components), "reasons": list(self.reasons)}


def guard_verdict(analysis) -> GuardVerdict | None:
    """The guard's verdict on an analysed slice; a not_brain_mri label is a rejection."""
    if not analysis:  # None, or "" from a template for a slice not analysed
        return None
    g = analysis.guard if isinstance(analysis.guard, dict) else {}
    in_dist = g.get("in_distribution", analysis.in_distribution)
    rejected = analysis.label == Label.NOT_BRAIN_MRI or in_dist is False
    comps = g.get("components") if isinstance(g.get("components"), dict) else {}
    reasons = tuple(str(r) for r in (g.get("reasons") or ()) if r)
    return GuardVerdict(rejected=rejected, score=_float(g.get("score")), components=comps, reasons=reasons)
