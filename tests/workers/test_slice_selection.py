"""Slice selection in the worker: an empty edge slice of a DICOM series is skipped with its reason,
never classified; the slices with a head are analysed; a JPEG is analysed as before."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from scans import services
from scans.models import Analysis, Report, Scan, ScanStatus
from tests import builders as b
from workers import tasks

pytestmark = pytest.mark.django_db


def _empty_slice(sop_uid: str, instance: int) -> bytes:
    """A slice of the same series holding scanner noise only (stored values ~1% of the others)."""
    ds = pydicom.dcmread(io.BytesIO(b.dicom_bytes(sop_uid=sop_uid, instance_number=instance)))
    noise = np.abs(np.random.default_rng(instance).normal(0, 10, (ds.Rows, ds.Columns)))
    ds.PixelData = noise.astype(np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_an_empty_edge_slice_is_skipped_and_the_head_slices_are_analysed(staff_user):
    files = [b.upload("edge.dcm", _empty_slice("1.9.17.1", 1))]
    files += [b.upload(f"head{i}.dcm", b.dicom_bytes(sop_uid=f"1.9.17.{i}", instance_number=i, seed=i))
              for i in (2, 3)]
    study = services.register_upload(staff_user, files, {}).studies[0]

    result = tasks.analyze_study.apply(args=(study.pk,))
    assert result.successful(), result.traceback

    edge = Scan.objects.get(study=study, instance_number=1)
    assert edge.status == ScanStatus.SKIPPED and "no anatomy" in edge.skip_reason
    assert not Analysis.objects.filter(scan=edge).exists()
    assert Scan.objects.filter(study=study, status=ScanStatus.ANALYZED).count() == 2
    report = Report.objects.current().get(study=study)
    assert report.label and report.evidence and report.rules_version
    assert any(i["code"] == "slice" and "no anatomy" in i["reason"] for i in report.not_analysed)


def test_a_jpeg_is_analysed_as_before_and_says_no_series_rules_applied(staff_user):
    study = b.upload_study(staff_user, 1, seed=71)
    assert tasks.analyze_study.apply(args=(study.pk,)).successful()
    report = Report.objects.current().get(study=study)
    assert report.label in {"glioma", "meningioma", "notumor", "pituitary", "not_brain_mri"}
    assert "no series rules could apply" in report.evidence


def test_a_study_of_only_mosaics_reaches_review_as_indeterminate_with_an_indeterminate_text(staff_user):
    from pathlib import Path

    dev = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dicom-series-dev" / "fmri_mosaic"
    files = [b.upload(p.name, p.read_bytes()) for p in sorted(dev.glob("*.dcm"))]
    study = services.register_upload(staff_user, files, {}).studies[0]

    assert tasks.analyze_study.apply(args=(study.pk,)).successful()
    report = Report.objects.current().get(study=study)
    assert tasks.explain_report.apply(args=(report.pk,)).successful()
    assert tasks.finalize_report.apply(args=(report.pk,)).successful()

    report.refresh_from_db()
    assert report.status == "awaiting_review" and report.label == "indeterminate"
    assert "indeterminate" in report.explanation_text and "meningioma" not in report.explanation_text
    assert not Analysis.objects.filter(scan__study=study).exists()
