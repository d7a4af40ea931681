"""The detail pass: saliency and the per-case faithfulness check, after the finding.

The worker's first pass gives every slice its label, probabilities, guard verdict,
Grad-CAM, region and overlay. Saliency (a backward pass to the pixels) and the
faithfulness check (a deletion curve, about nine forward passes a slice) cost about ten
times that, so they are computed later and only where a reviewer looks first:

    complete_analysis ──(on commit)──► queue_detail: the key slice + the slices that carry the
                                       finding (detail_scan_ids), at low priority on queue gpu
    report page / API ──► request_detail: any analysed slices, on demand
    workers.tasks.analyze_detail ──► pending_detail (which still need it) ──► record_detail

Until then Analysis.saliency is empty and Analysis.faithfulness is None, which the
report page, the print view and the API show as "not computed" (Analysis.detail_computed).
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from scans import permissions
from scans.models import Analysis, AuditAction, Label, Report, ScanStatus, Via
from scans.services.audit import audit
from scans.services.errors import InvalidState
from scans.services.queue import ANALYZE_DETAIL, enqueue

logger = logging.getLogger(__name__)

# Redis priority step (kombu: 0 first, 9 last): the detail pass waits behind any study's first pass.
LOW_PRIORITY = 9


def detail_scan_ids(analyses, report: Report, cap: int | None = None) -> list[int]:
    """The scans whose saliency and faithfulness a reviewer sees first.

    The key slice, then the analysed slices whose label is the report's finding, most
    confident first, at most ``cap`` (``BRAINAI_DETAIL_SLICES``) in all. A study whose
    finding is ``not_brain_mri`` gets only its key slice.

    Args:
        analyses: the study's Analysis rows.
        report: the report whose finding (``label``, ``key_scan_id``) they support.
        cap: the most scan ids returned.

    Returns:
        Scan ids, the key slice first.
    """
    cap = settings.BRAINAI_DETAIL_SLICES if cap is None else cap
    ids = [report.key_scan_id] if report.key_scan_id else []
    if report.label and report.label != Label.NOT_BRAIN_MRI:
        support = sorted((a for a in analyses if a.label == report.label and a.scan_id not in ids),
                         key=lambda a: (-float(a.probabilities.get(report.label, 0.0)), a.scan_id))
        ids += [a.scan_id for a in support]
    return ids[:max(cap, 0)]


def queue_detail(study_id: int, scan_ids: list[int]) -> None:
    """Send the detail pass for these scans once the transaction commits, at low priority."""
    if scan_ids:
        enqueue(ANALYZE_DETAIL, study_id, list(scan_ids), priority=LOW_PRIORITY)


def request_detail(report: Report, user, scan_ids=None, *, via: Via = Via.PORTAL,
                   ip_address: str | None = None) -> Report:
    """Ask for saliency and the faithfulness check of some slices (all of the study's
    analysed slices when ``scan_ids`` is None); slices that have them already are skipped.
    Audited (``request_detail``, with the scan ids and their count) in the same transaction.

    Raises:
        PermissionDenied: the user may not view reports.
        InvalidState: no analysed slice of this report's study is named.
    """
    permissions.EXPLAIN.require(user, "ask for saliency maps")
    with transaction.atomic():
        qs = Analysis.objects.filter(scan__study_id=report.study_id, scan__status=ScanStatus.ANALYZED)
        if scan_ids is not None:
            qs = qs.filter(scan_id__in=[int(i) for i in scan_ids])
        ids = sorted(qs.values_list("scan_id", flat=True))
        if not ids:
            raise InvalidState(f"report {report.pk} has no analysed slice to compute saliency for")
        queue_detail(report.study_id, ids)
        audit(AuditAction.REQUEST_DETAIL, user, via=via or Via.PORTAL, report=report, ip_address=ip_address,
              scans=ids[:100], count=len(ids))
    return report


def pending_detail(study_id: int, scan_ids) -> list:
    """The analysed scans among ``scan_ids`` still without their detail, with their
    analyses (for the model name and version), in scan order."""
    from scans.models import Scan

    scans = (Scan.objects.filter(study_id=study_id, pk__in=list(scan_ids), status=ScanStatus.ANALYZED)
             .select_related("analysis").order_by("series_id", "instance_number", "frame_index", "id"))
    return [s for s in scans if not s.analysis.detail_computed]


def record_detail(scan_id: int, *, model_version: str, saliency_png: bytes | None,
                  faithfulness: dict | None) -> bool:
    """Store a scan's saliency PNG and faithfulness check; False (nothing stored) when
    the scan was re-analysed meanwhile or by other weights than ``model_version``."""
    from scans.services.analysis import _save_png, jsonable

    with transaction.atomic():
        analysis = (Analysis.objects.select_for_update()
                    .filter(scan_id=scan_id, scan__status=ScanStatus.ANALYZED).first())
        if analysis is None or analysis.model_version != str(model_version):
            logger.info("scan %s: detail not stored (re-analysed or other weights)", scan_id)
            return False
        if saliency_png and not analysis.saliency:
            analysis.saliency = _save_png("saliency", scan_id, saliency_png)
        if faithfulness is not None:
            analysis.faithfulness = jsonable(faithfulness)
        analysis.save(update_fields=["saliency", "faithfulness"])
    return True
