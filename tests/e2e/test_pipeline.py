"""Upload -> analysis (gpu queue) -> explanation (llm queue) -> report awaiting review,
with a real Redis, a real Celery worker process and the real model."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from scans.models import Analysis, Report, ReportStatus, Scan, ScanStatus, Study, StudyStatus
from scans.services.queue import ANALYZE_STUDY, EXPLAIN_REPORT, send_now
from tests import builders as b
from tests.builders import token_client

pytestmark = [pytest.mark.e2e]

PATIENT_NAME = "Quentin Zebediah"
DICOM_NAME = "Xylo^Yvette"


def _done(study_ids):
    def check():
        reports = list(Report.objects.current().filter(study_id__in=study_ids))
        return len(reports) == len(study_ids) and all(r.status == ReportStatus.AWAITING_REVIEW for r in reports)
    return check


def test_an_upload_becomes_a_report_awaiting_review(pipeline, fake_gemini, staff_user, radiologist, wait_for):
    api = token_client(staff_user)
    files = [b.upload(f"slice{i}.jpg", data) for i, data in enumerate(b.brain_jpegs(3))]
    files.append(b.upload("series.dcm", b.dicom_bytes(patient_name=DICOM_NAME, patient_id="MRN-77", frames=2)))
    response = api.post("/api/v1/uploads/", {"files": files, "patient_id": "MRN-42", "patient_name": PATIENT_NAME,
                                             "study_description": "MRI head"}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 4 and body["rejected"] == []
    study_ids = [s["id"] for s in body["studies"]]
    assert len(study_ids) == 2

    wait_for(_done(study_ids), timeout=300, what="both reports to await review")

    assert Scan.objects.filter(study_id__in=study_ids, status=ScanStatus.ANALYZED).count() == 5
    assert Analysis.objects.filter(scan__study_id__in=study_ids).count() == 5
    assert set(Study.objects.filter(pk__in=study_ids).values_list("status", flat=True)) == {StudyStatus.AWAITING_REVIEW}
    report = Report.objects.current().get(study_id=study_ids[0])
    detail = token_client(radiologist).get(f"/api/v1/reports/{report.pk}/").json()
    assert detail["finding"]["label"] in {"glioma", "meningioma", "notumor", "pituitary", "not_brain_mri"}
    assert detail["explanation"]["text"] and detail["explanation"]["provider"] in {"gemini", "template"}
    assert detail["model"]["name"] and detail["model"]["version"]
    overlay_url = detail["scans"][0]["overlay_url"]
    assert overlay_url

    # The detail pass follows at low priority: the key slice gets saliency and faithfulness.
    wait_for(lambda: Analysis.objects.get(scan_id=report.key_scan_id).detail_computed, timeout=300,
             what="the key slice's detail pass")
    key_row = next(s for s in token_client(radiologist).get(f"/api/v1/reports/{report.pk}/").json()["scans"]
                   if s["id"] == report.key_scan_id)
    assert key_row["detail"] == "computed" and key_row["saliency_url"] and key_row["faithfulness"] is not None

    # The heatmap is served to a signed-in user only.
    browser = Client()
    assert browser.get(overlay_url).status_code in (302, 403)
    browser.force_login(radiologist)
    image = browser.get(overlay_url)
    assert image.status_code == 200 and image["Content-Type"] == "image/png"

    # Nothing that identifies the patients reached the LLM.
    sent = b"".join(r.raw() for r in fake_gemini.requests)
    assert fake_gemini.requests, "the worker never called the LLM"
    for secret in (PATIENT_NAME, "Xylo", "Yvette", "MRN-42", "MRN-77", "slice0.jpg", "series.dcm",
                   Study.objects.get(pk=study_ids[1]).study_instance_uid):
        assert secret.encode() not in sent, f"{secret!r} was sent to the LLM"


def test_running_the_tasks_twice_duplicates_nothing(pipeline, staff_user, wait_for):
    api = token_client(staff_user)
    files = [b.upload(f"dup{i}.png", b.png_bytes(seed=500 + i)) for i in range(2)]
    body = api.post("/api/v1/uploads/", {"files": files, "patient_id": "MRN-9", "model": "cnn"},
                    format="multipart").json()
    study_id = body["studies"][0]["id"]
    wait_for(_done([study_id]), timeout=240, what="the report to await review")
    report = Report.objects.get(study_id=study_id)
    before = (report.explanation_text, report.explanation_generated_at)
    log_before = pipeline.log().count("succeeded")

    assert send_now(ANALYZE_STUDY, study_id) and send_now(EXPLAIN_REPORT, report.pk)
    wait_for(lambda: pipeline.log().count("succeeded") >= log_before + 2, timeout=60, what="the repeated tasks")

    assert Analysis.objects.filter(scan__study_id=study_id).count() == 2
    assert Report.objects.filter(study_id=study_id).count() == 1
    report.refresh_from_db()
    assert (report.explanation_text, report.explanation_generated_at) == before
    assert report.status == ReportStatus.AWAITING_REVIEW
    assert report.model_name == "cnn"  # the classifier the upload asked for, not the default


def test_a_rerun_from_the_api_side_analyses_again_and_signing_works(pipeline, staff_user, radiologist, clinic_admin, wait_for):
    from scans import services

    api = token_client(staff_user)
    body = api.post("/api/v1/uploads/", {"files": [b.upload("one.jpg", b.jpeg_bytes(seed=77))],
                                         "patient_id": "MRN-5"}, format="multipart").json()
    study = Study.objects.get(pk=body["studies"][0]["id"])
    wait_for(_done([study.pk]), timeout=240, what="the first report")

    services.rerun_analysis(study, clinic_admin)
    wait_for(_done([study.pk]), timeout=240, what="the re-run report")

    report = Report.objects.current().get(study=study)
    signed = token_client(radiologist).post(f"/api/v1/reports/{report.pk}/sign/",
                                            json.dumps({"impression": "No acute finding."}),
                                            content_type="application/json")
    assert signed.status_code == 200, signed.content
    assert signed.json()["status"] == "signed"
