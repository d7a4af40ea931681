"""/metrics after a real pipeline run: a study uploaded through the API is analysed by the
real Celery worker (real Redis, real model), explained through the fake Gemini, sent as a
DICOM SR to a C-STORE receiver on loopback and announced to a webhook on loopback; then
Prometheus' view of it is read over HTTP (live_server) and parsed with prometheus_client's
parser, and every family named in issue #20 is checked against what the run stored."""
from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from scans.models import (
    Analysis, Delivery, DeliveryStatus, Destination, DestinationKind, Notification, NotificationStatus,
    NotificationTarget, Report, ReportStatus, Scan, ScanStatus, StudyStatus, TargetKind,
)
from scans.services import queue
from tests import builders as b
from tests.builders import token_client
from tests.dicom_sink import DicomSink
from tests.receivers import WebhookReceiver

pytestmark = [pytest.mark.e2e]

SECRET = "e2e-metrics-webhook-secret-0123"
PATIENT_NAME = "Ottoline Brackenbury"
PATIENT_ID = "MRN-METRICS-3141"
STAGES = ("preprocess", "model", "guard", "maps", "saliency", "region", "faithfulness")


def _parse(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return out


def _get(families, family, sample=None, **labels):
    return families[family][(sample or family, tuple(sorted(labels.items())))]


def test_every_family_is_exported_with_the_values_of_a_real_run(pipeline, live_server, staff_user, wait_for):
    with DicomSink() as sink, WebhookReceiver(SECRET) as hook:
        Destination.objects.create(name="metrics pacs", kind=DestinationKind.CSTORE, ae_title=sink.ae_title,
                                   host="127.0.0.1", port=sink.port)
        NotificationTarget.objects.create(name="metrics hook", kind=TargetKind.WEBHOOK, url=hook.url, secret=SECRET)
        files = [b.upload(f"m{i}.jpg", data) for i, data in enumerate(b.brain_jpegs(3, "meningioma", start=20))]
        response = token_client(staff_user).post(
            "/api/v1/uploads/", {"files": files, "patient_id": PATIENT_ID, "patient_name": PATIENT_NAME,
                                 "priority": "urgent"}, format="multipart")
        assert response.status_code == 202, response.content
        study_id = response.json()["studies"][0]["id"]

        wait_for(lambda: Report.objects.current().filter(study_id=study_id, status=ReportStatus.AWAITING_REVIEW
                                                         ).exists(), timeout=300, what="the report to await review")
        wait_for(lambda: Delivery.objects.filter(report__study_id=study_id, status=DeliveryStatus.SENT).exists(),
                 timeout=120, what="the SR sent to the receiver")
        wait_for(lambda: Notification.objects.filter(study_id=study_id, status=NotificationStatus.SENT).exists(),
                 timeout=120, what="the webhook notification sent")
        assert sink.received and hook.hooks

    # The broker's lanes right before and after the scrape: when they agree, the scrape saw the same.
    lanes_before = queue.lane_lengths()
    scraped = httpx.get(f"{live_server.url}/metrics", timeout=30)
    lanes_after = queue.lane_lengths()
    assert scraped.status_code == 200, scraped.text
    text = scraped.text
    families = _parse(text)

    report = Report.objects.current().get(study_id=study_id)
    analyses = list(Analysis.objects.filter(scan__study_id=study_id))
    model = analyses[0].model_name
    analysed = Scan.objects.filter(study_id=study_id, status=ScanStatus.ANALYZED).count()
    assert analysed == len(analyses) == 3

    # studies and scans by state
    assert _get(families, "brainai_studies", status=StudyStatus.AWAITING_REVIEW, priority="urgent") == 1
    assert sum(v for (_, labels), v in families["brainai_studies"].items()) == 1
    assert _get(families, "brainai_scans", status=ScanStatus.ANALYZED) == analysed
    assert _get(families, "brainai_scans", status=ScanStatus.PENDING) == 0

    # queue length per lane, from the real broker
    assert _get(families, "brainai_broker_up") == 1
    exported = {dict(labels)["lane"]: v for (_, labels), v in families["brainai_queue_length"].items()}
    assert set(exported) == {"urgent", "routine", "research", "detail"}
    if lanes_before == lanes_after:
        assert exported == lanes_before

    # seconds per slice (histogram) and per stage: every analysed slice, the sums the worker stored
    h = "brainai_analysis_slice_seconds"
    assert _get(families, h, f"{h}_count", model=model) == analysed
    assert _get(families, h, f"{h}_bucket", model=model, le="+Inf") == analysed
    assert _get(families, h, f"{h}_sum", model=model) == pytest.approx(sum(a.timings["total"] for a in analyses))
    assert _get(families, h, f"{h}_sum", model=model) > 0
    s = "brainai_analysis_stage_seconds"
    for stage in STAGES:
        assert _get(families, s, f"{s}_count", model=model, stage=stage) == analysed
        assert _get(families, s, f"{s}_sum", model=model, stage=stage) == pytest.approx(
            sum(a.timings[stage] for a in analyses))
    assert _get(families, "brainai_analysed_slices", "brainai_analysed_slices_total", model=model) == analysed

    # guard rejections
    assert _get(families, "brainai_guard_rejections", "brainai_guard_rejections_total", model=model) == sum(
        not a.in_distribution for a in analyses)

    # LLM latency and fallbacks by provider
    lat = "brainai_llm_latency_seconds"
    provider = report.explanation_provider
    assert provider in {"gemini", "template"}
    assert _get(families, lat, f"{lat}_count", provider=provider) == 1
    assert _get(families, lat, f"{lat}_sum", provider=provider) == pytest.approx(report.explanation_latency_ms / 1000)
    fallbacks = sum(families["brainai_llm_fallbacks"].values())
    assert fallbacks == (1 if report.explanation_fallback_reason else 0)

    # notifications and DICOM sends by outcome
    assert _get(families, "brainai_notifications", target="metrics hook", kind="webhook", status="sent") == 1
    assert _get(families, "brainai_notifications", target="metrics hook", kind="webhook", status="failed") == 0
    assert _get(families, "brainai_dicom_sends", destination="metrics pacs", kind="cstore", status="sent") == 1
    assert _get(families, "brainai_dicom_send_attempts", "brainai_dicom_send_attempts_total",
                destination="metrics pacs", kind="cstore", status="sent") == 1

    # nothing that identifies the patient
    for secret in (PATIENT_NAME, "Ottoline", PATIENT_ID, "m0.jpg", report.study.study_instance_uid):
        assert secret not in text
