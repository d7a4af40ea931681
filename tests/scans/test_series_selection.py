"""Series selection at upload: real Siemens MOSAIC and field-map series are kept, never queued,
and their reasons reach the report, the API, the study page and the print view."""
from __future__ import annotations

from pathlib import Path

import pytest

from scans import services
from scans.models import Report, Scan, ScanStatus
from tests import builders as b

DEV = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dicom-series-dev"
pytestmark = pytest.mark.django_db


def _upload_dev(user, folders=("fmri_mosaic", "field_map")):
    files = [b.upload(f"{folder}-{p.name}", p.read_bytes()) for folder in folders
             for p in sorted((DEV / folder).glob("*.dcm"))]
    assert files
    return services.register_upload(user, files, {})


def test_a_mosaic_and_a_field_map_are_kept_but_never_queued(staff_user):
    result = _upload_dev(staff_user)
    scans = Scan.objects.filter(study__in=result.studies)
    assert scans.count() == result.accepted > 0
    assert set(scans.values_list("status", flat=True)) == {ScanStatus.SKIPPED}
    reasons = set(scans.values_list("skip_reason", flat=True))
    assert "Siemens MOSAIC: tiled fMRI, not one slice" in reasons
    assert any("field map" in r for r in reasons)
    assert all(services.claim_batch(study.pk, 32, 3) == [] for study in result.studies)


def test_a_study_with_no_analysable_series_is_indeterminate_and_says_why_everywhere(
        staff_user, radiologist_api, radiologist_client):
    study = _upload_dev(staff_user, folders=("fmri_mosaic",)).studies[0]
    services.complete_analysis(study.pk)
    report = Report.objects.current().get(study=study)
    assert report.label == "indeterminate" and report.rules_version
    assert "Siemens MOSAIC" in report.evidence

    api = radiologist_api.get(f"/api/v1/reports/{report.pk}/").json()
    assert api["finding"]["label"] == "indeterminate"
    assert {i["reason"] for i in api["finding"]["not_analysed"]} >= {"Siemens MOSAIC: tiled fMRI, not one slice"}
    detail = radiologist_api.get(f"/api/v1/studies/{study.pk}/").json()
    assert any(not s["analysed"] and "MOSAIC" in s["decision_reason"] for s in detail["series"])
    assert any(s["skip_reason"] for s in detail["scans"])

    for url in (f"/studies/{study.pk}/", f"/reports/{report.pk}/", f"/reports/{report.pk}/print/"):
        page = radiologist_client.get(url).content.decode()
        assert "Siemens MOSAIC: tiled fMRI, not one slice" in page, url


def _thin_3d(sop_uid: str, instance: int) -> bytes:
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(b.dicom_bytes(sop_uid=sop_uid, instance_number=instance, seed=instance)))
    ds.MRAcquisitionType, ds.SliceThickness, ds.PixelSpacing = "3D", 1.0, [1.0, 1.0]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_a_thin_3d_volume_sends_only_every_fifth_slice_to_the_model(staff_user):
    files = [b.upload(f"v{i}.dcm", _thin_3d(f"1.9.3.{i}", i)) for i in range(1, 11)]
    study = services.register_upload(staff_user, files, {}).studies[0]
    pending = list(Scan.objects.filter(study=study, status=ScanStatus.PENDING)
                   .order_by("instance_number").values_list("instance_number", flat=True))
    assert pending == [3, 8]
    between = Scan.objects.filter(study=study, status=ScanStatus.SKIPPED)
    assert between.count() == 8 and all("every 5th slice" in s.skip_reason for s in between)


# --- the study finding from stored per-slice results (no model: the probabilities are given) ---

NORMAL = {"glioma": 0.002, "meningioma": 0.003, "notumor": 0.993, "pituitary": 0.002}
FALSE = {"glioma": 0.001, "meningioma": 0.997, "notumor": 0.001, "pituitary": 0.001}


def _decided(user, probabilities: list[dict], patient: str):
    """An analysed axial series whose slices have the given calibrated probabilities, completed."""
    from types import SimpleNamespace

    root = f"1.9.8.{sum(map(ord, patient))}"  # a UID holds digits only
    files = [b.upload(f"{patient}-{i}.dcm", b.dicom_bytes(patient_id=patient, study_uid=root, series_uid=f"{root}.1",
                                                          sop_uid=f"{root}.1.{i}", instance_number=i, seed=i))
             for i in range(1, len(probabilities) + 1)]
    study = services.register_upload(user, files, {}).studies[0]
    scans = list(Scan.objects.filter(study=study).order_by("instance_number"))
    results = [services.ScanResult(s.pk, SimpleNamespace(label=max(p, key=p.get), probabilities=p, confidence=max(p.values()),
                                                         in_distribution=True), b"", b"") for s, p in zip(scans, probabilities)]
    services.record_analyses(results, model_name="cnn", model_version="test")
    services.complete_analysis(study.pk)
    return Report.objects.current().get(study=study)


def test_normal_slices_with_one_confident_false_slice_are_never_a_tumour(staff_user):
    report = _decided(staff_user, [NORMAL] * 6 + [FALSE] + [NORMAL] * 6, "N1")
    assert report.label in {"notumor", "indeterminate"} and report.label == "indeterminate"
    assert "suggest meningioma (slice 7" in report.evidence and report.rules_version


def test_agreeing_slices_give_the_tumour_label_and_the_worklist_ranks_it_first(staff_user):
    from scans import selectors

    tumour = _decided(staff_user, [NORMAL] * 3 + [FALSE] * 4 + [NORMAL] * 3, "T1")
    normal = _decided(staff_user, [NORMAL] * 10, "N2")
    unsure = _decided(staff_user, [NORMAL] * 4 + [FALSE] + [NORMAL] * 4, "U1")
    assert tumour.label == "meningioma" and "4 of 10 slices in the series (T1 post, axial)" in tumour.evidence
    assert "contiguous from slice 4 to 7" in tumour.evidence
    assert normal.label == "notumor"
    order = [r.pk for r in selectors.worklist() if r.pk in {tumour.pk, normal.pk, unsure.pk}]
    assert order == [tumour.pk, unsure.pk, normal.pk]
