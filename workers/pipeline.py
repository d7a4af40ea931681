"""One batch of scans: decode -> Analyzer -> PNGs. No database writes here.

Returns what scans.services.record_analyses stores, the per-scan errors, and the time
spent in each stage (for logs and bench/pipeline.py).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files.storage import default_storage

from ml.errors import ImageReadError
from ml.io.frame import Frame
from ml.io.read import read_frames
from ml.timing import StageTimer
from scans.services import ScanResult

logger = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    results: list[ScanResult] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)  # scan id -> reason (final)
    skipped: dict[int, str] = field(default_factory=dict)  # scan id -> why slice selection kept it back
    seconds: StageTimer = field(default_factory=StageTimer)  # decode, model, render


def _decode(scans, outcome: BatchOutcome) -> list[tuple[object, Frame]]:
    """Read each source file once (a multi-frame DICOM serves several scans).

    Frames keep the reader's metadata (modality, colour) because the input guard uses it.
    """
    by_source = defaultdict(list)
    for scan in scans:
        by_source[scan.source.name].append(scan)
    decoded = []
    for name, group in by_source.items():
        try:
            with default_storage.open(name, "rb") as fh:
                frames = read_frames(fh.read())
        except (ImageReadError, OSError) as exc:
            for scan in group:
                outcome.errors[scan.pk] = f"could not read the stored image: {exc}"
            continue
        for scan in group:
            if scan.frame_index >= len(frames):
                outcome.errors[scan.pk] = f"stored file has no frame {scan.frame_index + 1}"
            else:
                decoded.append((scan, frames[scan.frame_index]))
    return decoded


def _select(items, outcome: BatchOutcome) -> list[tuple[object, Frame]]:
    """Slice selection (ml.study): DICOM slices with no anatomy are kept from the model.

    Images without tags (JPEG/PNG) are analysed as they are: no series rules apply to them.
    """
    from ml.study import decide_slice
    from scans.services.selection import current_rules

    rules, kept = current_rules(), []
    for scan, frame in items:
        facts = scan.series.facts or {}
        if facts.get("has_tags"):
            decision = decide_slice(frame.pixels, rules, signal_level=frame.meta.get("signal_level"),
                                    series_level=facts.get("signal_level"))
            if not decision.analysed:
                outcome.skipped[scan.pk] = decision.reason
                continue
        kept.append((scan, frame))
    return kept


def _analyze(analyzer, items, outcome: BatchOutcome):
    """Whole batch at once; if the analyzer refuses it, one by one to find the bad scan.

    The first pass: classify, guard, Grad-CAM, region. Saliency and the faithfulness
    check come later, for the slices a reviewer sees first (run_detail).
    """
    kwargs = {"saliency": False, "gradcam_pp": False, "faithfulness": False}
    images = [frame for _, frame in items]
    orientations = [scan.orientation for scan, _ in items]
    try:
        return list(zip(items, analyzer.analyze(images, orientations=orientations, **kwargs)))
    except ValueError:
        pairs = []
        for item, orientation in zip(items, orientations):
            try:
                pairs.append((item, analyzer.analyze([item[1]], orientations=[orientation], **kwargs)[0]))
            except ValueError as exc:
                outcome.errors[item[0].pk] = f"the model could not analyse this image: {exc}"
        return pairs


def run_batch(analyzer, scans) -> BatchOutcome:
    from ml.explain.overlay import render_heatmap_png, render_overlay_png

    outcome = BatchOutcome()
    with outcome.seconds.stage("decode"):
        items = _decode(scans, outcome)
    with outcome.seconds.stage("select"):
        items = _select(items, outcome)
    with outcome.seconds.stage("model"):
        pairs = _analyze(analyzer, items, outcome) if items else []
    with outcome.seconds.stage("render"):
        for (scan, frame), result in pairs:
            try:
                heat = render_heatmap_png(result.gradcam)
                overlay = render_overlay_png(frame.pixels, result.gradcam)
                sal = render_heatmap_png(result.saliency, cmap="hot") if result.saliency is not None else None
            except ValueError as exc:
                outcome.errors[scan.pk] = f"could not draw the heatmap: {exc}"
                continue
            outcome.results.append(ScanResult(scan.pk, result, heat, overlay, sal))
    return outcome


@dataclass
class Detail:
    """One scan's detail pass: the saliency PNG (None when BRAINAI_SALIENCY is off) and
    the faithfulness check."""

    scan_id: int
    saliency_png: bytes | None
    faithfulness: dict | None


def run_detail(analyzer, scans) -> tuple[list[Detail], StageTimer]:
    """Saliency and the per-case faithfulness check for analysed scans. No database writes.

    Returns the details and the seconds per stage (decode, model, render); a scan whose
    image can no longer be read or analysed is left out (it stays "not computed").
    """
    from ml.explain.overlay import render_heatmap_png

    outcome = BatchOutcome()
    with outcome.seconds.stage("decode"):
        items = _decode(scans, outcome)
    details = []
    with outcome.seconds.stage("model"):
        try:
            results = analyzer.analyze([f for _, f in items], orientations=[s.orientation for s, _ in items],
                                       saliency=settings.BRAINAI_SALIENCY, gradcam_pp=False,
                                       faithfulness=True) if items else []
        except ValueError as exc:
            logger.warning("detail pass refused for %d scans: %s", len(items), exc)
            results = []
    with outcome.seconds.stage("render"):
        for (scan, _), result in zip(items, results):
            sal = render_heatmap_png(result.saliency, cmap="hot") if result.saliency is not None else None
            details.append(Detail(scan.pk, sal, result.faithfulness))
    return details, outcome.seconds
