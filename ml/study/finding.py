"""The study finding from consistent evidence, not from its most suspicious slice.

Rule (k and t in the rules file, chosen by ``python -m ml.evaluation.study_rule``):

- a tumour label when at least k contiguous slices of one analysed series have calibrated
  p(that class) >= t. k counts slices of the training data's thickness (``reference_mm``,
  about 5 mm): a series of thinner slices needs proportionally more (a 1 mm volume's
  neighbours are nearly the same image, so they are not independent evidence), and k
  shrinks to the series' length for a shorter series;
- "no tumour" when no slice reaches t for any tumour class and at least half the scored
  slices have p(notumor) >= t;
- otherwise "indeterminate: review": isolated suspicious slices, a model unsure on most
  slices, or no slice that could be analysed at all (the reasons are listed);
- ``not_brain_mri`` when the input guard rejected every scored slice.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from ml.labels import INDETERMINATE, NO_TUMOUR, NOT_BRAIN_MRI, TUMOUR_CLASSES
from ml.study.series import SeriesFacts


@dataclass
class SliceScore:
    """One classified slice: its place in the series, calibrated probabilities, guard verdict."""

    position: int  # 1-based order in the series (instance order)
    probabilities: dict[str, float]
    in_distribution: bool = True
    ref: Any = None  # the caller's handle (a scan id, a file name)
    number: int | None = None  # what the evidence calls it (the instance number); position when None

    @property
    def shown(self) -> int:
        return self.number if self.number is not None else self.position


@dataclass
class SeriesEvidence:
    """An analysed series: its facts and the scores of the slices that were classified."""

    facts: SeriesFacts
    slices: list[SliceScore]
    skipped: int = 0  # slices not classified (too little head ...)


@dataclass
class StudyFinding:
    """The study's outcome, with the sentence that justifies it."""

    label: str  # a tumour class, "notumor", "indeterminate" or "not_brain_mri"
    evidence: str
    # Mean p(label) over the supporting run; for "no tumour" the mean p(notumor) of the classified
    # slices; for "indeterminate" the suspicious slice's p, or the share of confident slices.
    confidence: float | None = None
    key: Any = None  # ref of the most convincing slice
    series: int | None = None  # index into the evidence list
    run: tuple[int, int] | None = None  # first and last position of the supporting run
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "evidence": self.evidence, "confidence": self.confidence,
                "series": self.series, "run": list(self.run) if self.run else None, "reasons": self.reasons}


def _runs(slices: Sequence[SliceScore], cls: str, t: float) -> list[list[SliceScore]]:
    """Maximal runs of consecutive slices with p(cls) >= t (guard-rejected slices break a run)."""
    runs, current = [], []
    for s in slices:
        if s.in_distribution and s.probabilities.get(cls, 0.0) >= t:
            current.append(s)
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def slices_needed(ev: SeriesEvidence, k: int, reference_mm: float | None) -> int:
    """k in slices of this series: scaled by reference_mm / slice thickness, at most its length."""
    need = k
    thickness = ev.facts.slice_thickness
    if reference_mm and thickness and thickness < reference_mm:
        need = math.ceil(k * reference_mm / thickness)
    return max(1, min(need, len(ev.slices)))


def study_finding(series: Sequence[SeriesEvidence], *, k: int, t: float, reference_mm: float | None = None,
                  not_analysed: Sequence[str] = ()) -> StudyFinding:
    """Decide a study from its analysed series.

    Args:
        series: the analysed series, each with its slices in order.
        k: contiguous supporting slices a tumour label needs.
        t: calibrated probability a slice needs to support a class.
        reference_mm: the slice thickness k is counted in (None: k slices whatever their thickness).
        not_analysed: reasons of series that were not analysed (for an empty study).

    Returns:
        The StudyFinding; never a tumour label from fewer than min(k, series length) slices.
    """
    best = None  # (length, mean p, series index, class, run)
    lone = []  # (p, series index, class, slice): suspicious slices not confirmed
    for i, ev in enumerate(series):
        ordered = sorted(ev.slices, key=lambda s: s.position)
        need = slices_needed(ev, k, reference_mm)
        for cls in TUMOUR_CLASSES:
            for run in _runs(ordered, cls, t):
                mean = sum(s.probabilities[cls] for s in run) / len(run)
                if len(run) >= need:
                    if best is None or (len(run), mean) > best[:2]:
                        best = (len(run), mean, i, cls, run)
                else:
                    top = max(run, key=lambda s: s.probabilities[cls])
                    lone.append((top.probabilities[cls], i, cls, top, len(run)))
    if best is not None:
        length, mean, i, cls, run = best
        ev = series[i]
        key = max(run, key=lambda s: s.probabilities[cls])
        total = len(ev.slices)
        return StudyFinding(cls, f"{length} of {total} slices in {ev.facts.name()} support {cls}, contiguous "
                                 f"from slice {run[0].shown} to {run[-1].shown}", mean, key.ref, i,
                            (run[0].position, run[-1].position))
    scored = [(i, s) for i, ev in enumerate(series) for s in ev.slices]
    if not scored:
        reasons = list(not_analysed) or ["no slice held enough head to classify"]
        return StudyFinding(INDETERMINATE, "no series could be analysed: " + "; ".join(reasons),
                            reasons=reasons)
    accepted = [(i, s) for i, s in scored if s.in_distribution]
    if not accepted:
        key = max(scored, key=lambda p: p[1].position)[1]
        return StudyFinding(NOT_BRAIN_MRI, f"the input guard rejected all {len(scored)} classified slices",
                            None, key.ref)
    if lone:
        p, i, cls, top, length = max(lone, key=lambda x: x[0])
        need = slices_needed(series[i], k, reference_mm)
        return StudyFinding(INDETERMINATE, f"{length} slice(s) in {series[i].facts.name()} suggest {cls} "
                                           f"(slice {top.shown}, p {p:.2f}) but not {need} contiguous "
                                           "slices: review", p, top.ref, i, (top.position, top.position))
    normal = [s for _, s in accepted if s.probabilities.get(NO_TUMOUR, 0.0) >= t]
    share = len(normal) / len(accepted)
    key = max(accepted, key=lambda p: p[1].probabilities.get(NO_TUMOUR, 0.0))
    if share < 0.5:
        return StudyFinding(INDETERMINATE, f"the model is unsure: only {len(normal)} of {len(accepted)} slices "
                                           f"reach p(notumor) {t:.2f}: review", share, key[1].ref)
    mean_normal = sum(s.probabilities.get(NO_TUMOUR, 0.0) for _, s in accepted) / len(accepted)
    return StudyFinding(NO_TUMOUR, f"no slice supports a tumour (p >= {t:.2f}); {len(normal)} of "
                                   f"{len(accepted)} classified slices are confidently tumour-free",
                        mean_normal, key[1].ref, key[0])
