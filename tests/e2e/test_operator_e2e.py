"""The operator's view with a real Redis, a real Celery worker and the real model:
a full run writes its pipeline events in order and without PHI, and an operator retries a
failed study from the portal in a real browser (chromium through playwright) until it
completes."""
from __future__ import annotations

import json
from unittest import mock

import pytest

from scans import services
from scans.models import EventKind, PipelineEvent, Report, ReportStatus, Scan, Study, StudyStatus
from tests import builders as b
from tests.builders import token_client
from tests.e2e.test_browser import ANALYSIS_TIMEOUT_MS, browser_page  # noqa: F401 - the fixture

pytestmark = [pytest.mark.e2e]

PATIENT_NAME = "Quillon Vexmoor"
PATIENT_ID = "MRN-30917"
DICOM_NAME = "Wystan^Ebba"
DICOM_ID = "MRN-58826"
STUDY_UID = "1.2.826.0.1.3680043.8.498.77120"


def _kinds(study_id: int) -> list[str]:
    return list(PipelineEvent.objects.filter(study_id=study_id).order_by("created_at", "id")
                .values_list("kind", flat=True))


def _awaiting(study_id: int) -> bool:
    report = Report.objects.current().filter(study_id=study_id).first()
    return report is not None and report.status == ReportStatus.AWAITING_REVIEW


def test_a_full_run_logs_its_steps_in_order_without_phi(pipeline, staff_user, wait_for):
    api = token_client(staff_user)
    files = [b.upload(f"quillon_{i}.jpg", data) for i, data in enumerate(b.brain_jpegs(2, start=40))]
    files.append(b.upload("wystan_ebba.dcm", b.dicom_bytes(patient_name=DICOM_NAME, patient_id=DICOM_ID,
                                                           study_uid=STUDY_UID, series_uid=STUDY_UID + ".1",
                                                           sop_uid=STUDY_UID + ".1.1", frames=2)))
    body = api.post("/api/v1/uploads/", {"files": files, "patient_id": PATIENT_ID, "patient_name": PATIENT_NAME,
                                         "study_description": "MRI head"}, format="multipart").json()
    study_ids = [s["id"] for s in body["studies"]]
    assert len(study_ids) == 2, body

    wait_for(lambda: all(_awaiting(pk) for pk in study_ids), timeout=300, what="both reports to await review")

    for pk in study_ids:
        kinds = _kinds(pk)
        # received, queued, one batch or more, explained, finalised: in that order, once each
        assert kinds[:2] == ["received", "queued"], kinds
        batches = [i for i, k in enumerate(kinds) if k == "batch"]
        assert batches and batches == list(range(2, 2 + len(batches))), kinds
        assert kinds[2 + len(batches):] == ["explained", "finalised"], kinds
        batch_rows = PipelineEvent.objects.filter(study_id=pk, kind=EventKind.BATCH)
        assert sum(e.detail["scans"] for e in batch_rows) == Scan.objects.filter(study_id=pk).exclude(
            status="skipped").count()
        hostnames = {e.worker for e in batch_rows}
        assert len(hostnames) == 1 and hostnames.pop().startswith("e2e-"), "the Celery hostname of the worker"
        assert set(Scan.objects.filter(study_id=pk, attempts__gt=0).values_list("worker", flat=True)) == \
            {batch_rows[0].worker}

    stored = json.dumps(list(PipelineEvent.objects.filter(study_id__in=study_ids).values("kind", "worker", "detail")))
    uids = list(Scan.objects.filter(study_id__in=study_ids).exclude(sop_instance_uid="")
                .values_list("sop_instance_uid", flat=True))
    uids += list(Study.objects.filter(pk__in=study_ids).values_list("study_instance_uid", flat=True))
    for secret in (PATIENT_NAME, "Quillon", "Vexmoor", PATIENT_ID, "30917", DICOM_NAME, "Wystan", "Ebba", DICOM_ID,
                   "58826", "quillon_0", "wystan_ebba", ".jpg", ".dcm", STUDY_UID, *uids):
        assert secret not in stored, f"{secret!r} is in the pipeline events"


def _failed_study(user) -> Study:
    """A study whose analysis failed, reached through the services while nothing is sent to
    the broker (the session's worker would otherwise analyse it meanwhile)."""
    from brainai_site.celery import app

    with mock.patch.object(app, "send_task"):
        study = b.upload_study(user, 1, mri_class="glioma", seed=60)
        for scan in services.claim_batch(study.pk, 10, 3, worker="lost-worker@gone"):
            services.record_scan_error(scan.pk, "the model could not analyse this image: worker lost", final=True)
        services.complete_analysis(study.pk)
    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    return study


def test_an_operator_retries_a_failed_study_in_the_browser(pipeline, live_server, browser_page,  # noqa: F811
                                                           staff_user, django_user_model, wait_for):
    from playwright.sync_api import expect

    study = _failed_study(staff_user)
    b.make_user(django_user_model, "opal", "operator")
    page, base = browser_page, live_server.url

    page.goto(base + "/operator/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "opal")
    page.fill("#id_password", "pw-opal")
    page.click("button[type=submit]")
    page.wait_for_url(base + "/operator/")

    row = page.locator(f"#study-{study.pk}")
    expect(row).to_have_attribute("data-status", "failed")
    expect(row).to_contain_text("the model could not analyse this image")
    expect(row).to_contain_text("lost-worker@gone")
    expect(page.locator("#workers")).to_contain_text("e2e-")  # the session's worker answered the ping
    assert study.patient.patient_id not in page.content()

    row.locator("button[name=retry]").click()
    page.wait_for_url(base + "/operator/")
    expect(page.locator(".messages")).to_contain_text(f"Study {study.pk}: retry queued.")

    wait_for(lambda: _awaiting(study.pk), timeout=ANALYSIS_TIMEOUT_MS / 1000, what="the retried study to complete")
    page.reload()
    expect(page.locator(f"#study-{study.pk}")).to_have_count(0)  # no longer in flight or failed
    page.goto(base + f"/operator/studies/{study.pk}/events/")
    kinds = page.eval_on_selector_all("#events tbody tr", "rows => rows.map(r => r.dataset.kind)")
    at = kinds.index("operator")
    assert kinds[at - 1] == "queued", kinds  # the re-run queued, then the operator's action
    assert {"batch", "explained", "finalised"} <= set(kinds[at:]), kinds
    assert not page.errors, page.errors
