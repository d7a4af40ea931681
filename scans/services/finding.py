"""The study's AI finding from ml.study's rule, and the scans slice selection kept back.

A study of DICOM series is decided by consistent evidence (ml.study.study_finding: k
contiguous slices of one analysed series at p >= t); a study of images without tags (JPEG,
PNG) keeps the single-slice rule, and its report says that no series rules could apply.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from ml.study import SeriesEvidence, SeriesFacts, SliceScore, study_finding
from scans.models import Analysis, Label, Scan, ScanStatus, Study
from scans.services import state
from scans.services.selection import current_rules

NO_SERIES_RULES = "images without DICOM tags: no series rules could apply; the most suspicious slice decides"


@dataclass
class DecidedStudy:
    """What complete_analysis writes on the report; ``label`` "" means nothing could be decided."""

    label: str = ""
    confidence: float | None = None
    key: Analysis | None = None
    evidence: str = ""
    rules_version: str = ""
    not_analysed: list[dict] = field(default_factory=list)


def record_skipped(reasons: dict[int, str]) -> int:
    """Mark pending scans skipped by slice selection, each with its reason; returns how many."""
    moved = 0
    with transaction.atomic():
        for scan_id, reason in reasons.items():
            moved += state.move_scans(Scan.objects.filter(pk=scan_id, status=ScanStatus.PENDING),
                                      ScanStatus.SKIPPED, skip_reason=reason[:300])
    return moved


def _not_analysed(study: Study) -> list[dict]:
    """Every series not analysed, and per analysed series the slices skipped, with the reasons."""
    out = [{"series": s.number, "description": s.description, "code": s.decision, "reason": s.decision_reason,
            "scans": s.n} for s in study.series.filter(analysed=False).annotate(n=_count_scans())]
    skipped = defaultdict(int)
    for number, description, reason in (study.scans.filter(status=ScanStatus.SKIPPED, series__analysed=True)
                                        .values_list("series__number", "series__description", "skip_reason")):
        skipped[(number, description, reason)] += 1
    out += [{"series": n, "description": d, "code": "slice", "reason": r, "scans": c}
            for (n, d, r), c in sorted(skipped.items(), key=lambda x: (x[0][0] or 0, x[0][2]))]
    return out


def _count_scans():
    from django.db.models import Count

    return Count("scans")


def decide_study(study: Study, analyses: list[Analysis], single_slice_rule) -> DecidedStudy:
    """The finding of a study whose scans are all done.

    Args:
        analyses: the analysed scans' rows (with ``scan`` loaded).
        single_slice_rule: the rule for images without tags (analysis.study_finding).
    """
    rules = current_rules()
    series = list(study.series.all())
    not_analysed = _not_analysed(study)
    if not any((s.facts or {}).get("has_tags") for s in series):  # JPEG/PNG: as before
        key = single_slice_rule(analyses)
        if key is None:
            return DecidedStudy(rules_version=rules.version)
        rejected = not (key.in_distribution and key.label != Label.NOT_BRAIN_MRI)
        return DecidedStudy(Label.NOT_BRAIN_MRI if rejected else key.label, key.confidence, key,
                            NO_SERIES_RULES, rules.version, not_analysed)
    if not analyses and not not_analysed:  # every scan failed: the caller fails the study
        return DecidedStudy(rules_version=rules.version)
    by_series = defaultdict(list)
    for a in analyses:
        by_series[a.scan.series_id].append(a)
    evidence, owners = [], []
    for s in series:
        rows = sorted(by_series.get(s.pk, []), key=lambda a: (a.scan.instance_number or 0, a.scan.frame_index, a.scan_id))
        if s.analysed and rows:
            stored = s.facts or {}
            thickness = stored.get("slice_thickness")  # a sampled 3D volume: the sampled slices' spacing
            facts = SeriesFacts(description=s.description, number=s.number, plane=stored.get("plane"),
                                slice_thickness=thickness * stored.get("step", 1) if thickness else None)
            slices = [SliceScore(i + 1, a.probabilities, a.in_distribution and a.label != Label.NOT_BRAIN_MRI, a,
                                 number=a.scan.instance_number) for i, a in enumerate(rows)]
            evidence.append(SeriesEvidence(facts, slices))
            owners.append(s)
    reasons = [f"series {d['series']}: {d['reason']}" for d in not_analysed]
    finding = study_finding(evidence, k=rules.k, t=rules.t, reference_mm=rules.reference_mm, not_analysed=reasons)
    return DecidedStudy(finding.label, finding.confidence, finding.key, finding.evidence, rules.version, not_analysed)
