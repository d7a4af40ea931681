"""Faults from outside, in the live pipeline (real Redis, worker and model): a study sent
in parts and again whole, and an LLM that answers 429 or garbage
(docs/operations.md "Faults")."""
from __future__ import annotations

import pytest

from scans.models import Analysis, Report, ReportStatus, Scan, ScanStatus, Study
from tests import builders as b
from tests.builders import token_client
from tests.e2e.conftest import E2E_LLM_TIMEOUT_S

pytestmark = [pytest.mark.e2e]


def _post(user, datas, **fields):
    files = [b.upload(f"part{i}.dcm", data) for i, data in enumerate(datas)]
    response = token_client(user).post("/api/v1/uploads/", {"files": files, "model": "cnn", **fields},
                                       format="multipart")
    assert response.status_code == 202, response.content
    return response.json()


def _awaiting(study_id, after=None):
    def check():
        report = Report.objects.current().filter(study_id=study_id, status=ReportStatus.AWAITING_REVIEW).first()
        return report if report and (after is None or report.updated_at > after) else None
    return check


def test_a_study_sent_in_parts_and_then_again_whole_completes_once(pipeline, staff_user, wait_for):
    """The second half joins the finished study (reopened, analysed again); sending
    everything again adds nothing; the study never hangs half-made."""
    files = b.mr_study(4, start=30, study_uid="1.2.826.0.1.3680043.8.498.1901")
    first = _post(staff_user, files[:2])  # an upload that broke off half-way: the sender sends the rest later
    study_id = first["studies"][0]["id"]
    report = wait_for(_awaiting(study_id), timeout=240, what="the half study's report")

    second = _post(staff_user, files[2:])
    assert [s["id"] for s in second["studies"]] == [study_id] and second["accepted"] == 2
    wait_for(_awaiting(study_id, after=report.updated_at), timeout=240, what="the whole study's report")

    again = _post(staff_user, files)  # the sender retries everything
    assert again["accepted"] == 0 and len(again["rejected"]) == 4
    assert all("duplicate" in r["reason"] for r in again["rejected"])
    assert Study.objects.filter(study_instance_uid="1.2.826.0.1.3680043.8.498.1901").count() == 1
    scans = Scan.objects.filter(study_id=study_id)
    assert scans.count() == 4 and not scans.filter(status=ScanStatus.PENDING).exists()
    assert Analysis.objects.filter(scan__study_id=study_id).count() == scans.filter(status=ScanStatus.ANALYZED).count()
    assert Report.objects.current().get(study_id=study_id).status == ReportStatus.AWAITING_REVIEW


@pytest.mark.parametrize("mode", ["429", "malformed"])
def test_an_llm_that_answers_429_or_garbage_gives_the_template_in_time(pipeline, fake_gemini, staff_user, wait_for,
                                                                       mode):
    fake_gemini.default_mode = mode
    try:
        body = token_client(staff_user).post(
            "/api/v1/uploads/", {"files": [b.upload(f"llm-{mode}.jpg", b.jpeg_bytes(seed=1900 + len(mode)))],
                                 "patient_id": f"MRN-LLM-{mode}", "model": "cnn"}, format="multipart").json()
        report = wait_for(_awaiting(body["studies"][0]["id"]), timeout=240, what=f"the report with the LLM at {mode}")
    finally:
        fake_gemini.default_mode = "ok"
    assert report.explanation_provider == "template", report.explanation_fallback_reason
    assert report.explanation_fallback_reason and report.explanation_text
    waited = (report.explanation_generated_at - report.explanation_requested_at).total_seconds()
    assert waited <= E2E_LLM_TIMEOUT_S + 5, waited
