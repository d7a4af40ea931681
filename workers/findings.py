"""The LLM's input: structured results of a report, and nothing that identifies anyone.

llm.StudyFinding.from_mapping keeps only whitelisted keys; this module hands it only
labels, probabilities, region descriptors and model facts in the first place.
"""
from __future__ import annotations

from django.core.files.storage import default_storage

from llm import StudyFinding
from scans import selectors
from scans.models import Report


def study_finding(report: Report) -> StudyFinding:
    analyses = selectors.analyses_for_study(report.study_id).order_by(
        "scan__series_id", "scan__instance_number", "scan__frame_index", "scan_id")
    slices = [{"label": a.label, "probabilities": a.probabilities, "in_distribution": a.in_distribution,
               "region": a.region or None, "faithfulness": a.faithfulness_score} for a in analyses]
    return StudyFinding.from_mapping({
        # An indeterminate study with nothing analysed has no confidence: 0, never shown for it.
        "label": report.label, "probabilities": report.probabilities,
        "confidence": report.confidence if report.confidence is not None else 0.0,
        "slices": slices, "model_name": report.model_name, "model_version": report.model_version,
    })


def key_overlay_png(report: Report) -> bytes | None:
    """The de-identified overlay of the deciding slice (pixels only, no DICOM header)."""
    analysis = getattr(report.key_scan, "analysis", None) if report.key_scan_id else None
    if analysis is None or not analysis.overlay:
        return None
    with default_storage.open(analysis.overlay.name, "rb") as fh:
        return fh.read()
