"""/metrics (brainai_site/metrics.py): who may read it, and every family with the labels and
values of the rows built here through the real services (tests/builders.py)."""
from __future__ import annotations

import dataclasses

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from llm import Explanation
from scans import services
from scans.models import (
    Destination, DestinationKind, DeliveryStatus, Notification, NotificationStatus, NotificationTarget, NotifyEvent,
    Priority, ScanStatus, StudyStatus,
)
from tests import builders as b
from tests.broker import broker_at, free_port
from tests.dicom_sink import DicomSink

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789"
FAMILIES = {
    "brainai_studies": "gauge", "brainai_oldest_unfinished_study_age_seconds": "gauge", "brainai_scans": "gauge",
    "brainai_broker_up": "gauge", "brainai_queue_length": "gauge",
    "brainai_analysis_slice_seconds": "histogram", "brainai_analysis_stage_seconds": "histogram",
    "brainai_guard_rejections": "counter", "brainai_analysed_slices": "counter",
    "brainai_llm_latency_seconds": "histogram",
    "brainai_llm_fallbacks": "counter", "brainai_notifications": "gauge", "brainai_dicom_sends": "gauge",
    "brainai_dicom_send_attempts": "counter", "brainai_metrics_scrape_seconds": "gauge",
}


def scrape(client=None, **extra) -> dict:
    """GET /metrics; {family name: {(sample name, sorted labels): value}} and the types."""
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def parse(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = {"type": family.type,
                            "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}}
    return out


def value(families, family, sample=None, **labels):
    return families[family]["samples"][(sample or family, tuple(sorted(labels.items())))]


# --- who may read it -------------------------------------------------------------------------


def test_loopback_reads_it_without_signing_in():
    families = scrape()
    assert {name: f["type"] for name, f in families.items()} == FAMILIES


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.7.7", "2001:db8::5"])
def test_another_address_is_refused(address):
    assert Client(REMOTE_ADDR=address).get("/metrics").status_code == 403


def test_a_token_admits_any_address_and_its_absence_asks_for_it(settings):
    settings.BRAINAI_METRICS_TOKEN = TOKEN
    outside = Client(REMOTE_ADDR="10.1.2.3")
    missing = outside.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert outside.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token-0123456789").status_code == 403
    assert outside.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401  # not the scheme
    assert outside.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 403
    assert "brainai_scans" in scrape(outside, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def test_the_allow_list_takes_networks_and_none(settings):
    settings.BRAINAI_METRICS_ALLOW_IPS = ["10.0.0.0/8", "2001:db8::/32"]
    assert Client(REMOTE_ADDR="10.200.3.4").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="2001:db8::5").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="11.0.0.1").get("/metrics").status_code == 403
    assert Client().get("/metrics").status_code == 403  # 127.0.0.1 is no longer listed
    settings.BRAINAI_METRICS_ALLOW_IPS = ["none"]
    assert Client().get("/metrics").status_code == 403


def test_an_ipv4_mapped_loopback_address_is_loopback():
    assert Client(REMOTE_ADDR="::ffff:127.0.0.1").get("/metrics").status_code == 200


def test_a_request_through_a_proxy_is_not_admitted_by_its_address(settings):
    # Behind a proxy on the same host every request comes from 127.0.0.1.
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED"):
        assert Client(**{header: "127.0.0.1"}).get("/metrics").status_code == 403
    settings.BRAINAI_METRICS_TOKEN = TOKEN
    assert Client(HTTP_X_FORWARDED_FOR="203.0.113.9").get(
        "/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_only_get_and_only_after_the_caller_is_allowed():
    assert Client().post("/metrics").status_code == 405
    assert Client(REMOTE_ADDR="203.0.113.9").post("/metrics").status_code == 403


@pytest.mark.parametrize("variable, value", [("BRAINAI_METRICS_ALLOW_IPS", "10.0.0.0/33"),
                                             ("BRAINAI_METRICS_ALLOW_IPS", "localhost"),
                                             ("BRAINAI_METRICS_TOKEN", "short")])
def test_start_up_stops_on_a_bad_setting(variable, value, tmp_path):
    from tests.scans.test_settings import _start_django

    done = _start_django(**{variable: value, "BRAINAI_VAR_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and variable in done.stderr


# --- the families, from rows ----------------------------------------------------------------


def _timed(label, timings, **kw):
    return dataclasses.replace(b.slice_result(label, **kw), timings=timings)


def _stages(total, **given):
    stages = dict.fromkeys(("preprocess", "model", "guard", "maps", "saliency", "region", "faithfulness"), 0.0)
    return {**stages, **given, "total": total}


@pytest.fixture
def rows(staff_user, sent, settings):
    """Three studies: one awaiting review (an LLM answer, a sent and a failed DICOM send), one
    urgent whose explanation fell back to the template, one still analysing."""
    settings.BRAINAI_DELIVERY_MAX_ATTEMPTS = 1
    with DicomSink() as sink:
        Destination.objects.create(name="pacs", kind=DestinationKind.CSTORE, ae_title=sink.ae_title,
                                   host="127.0.0.1", port=sink.port)
        Destination.objects.create(name="down", kind=DestinationKind.CSTORE, ae_title="NOBODY",
                                   host="127.0.0.1", port=free_port())

        first = b.upload_study(staff_user, 2, seed=0, patient_id="P-1")
        report = b.analyse_study(first, results=[
            _timed("glioma", _stages(0.02, model=0.015, preprocess=0.003)),
            _timed("glioma", _stages(0.3, model=0.2, maps=0.06), in_distribution=False)])
        services.record_explanation(report.pk, Explanation("Text. Decision support only.", "gemini", "gemini-x",
                                                           "p1", 1500, attempts=1))
        report = services.finalize_report(report.pk)
        for delivery in report.deliveries.all():
            services.send_delivery(delivery.pk)
        assert sink.received, "the sink got nothing"

    urgent = services.register_upload(staff_user, [b.upload("u.png", b.png_bytes(seed=40))],
                                      {"patient_id": "P-2"}, priority=Priority.URGENT).studies[0]
    report = b.analyse_study(urgent, results=[_timed("meningioma", _stages(0.04, model=0.03))])
    services.record_explanation(report.pk, Explanation(
        "Template text. Decision support only.", "template", "template-v1", "t1", 8012, attempts=2,
        fallback_reason="timeout: gemini (gemini-x) gave no answer within 8 s"))
    services.finalize_report(report.pk)

    b.upload_study(staff_user, 3, seed=10, patient_id="P-3")  # analysing

    hooks = NotificationTarget.objects.create(name="ward hook", url="http://127.0.0.1:9/hook")
    for study, status in ((first, NotificationStatus.SENT), (urgent, NotificationStatus.FAILED)):
        Notification.objects.create(target=hooks, study=study, event=NotifyEvent.AWAITING_REVIEW,
                                    report_version=1, status=status)
    return {"first": first, "urgent": urgent}


def test_studies_and_scans_by_state(rows):
    families = scrape()
    assert value(families, "brainai_studies", status=StudyStatus.AWAITING_REVIEW, priority="routine") == 1
    assert value(families, "brainai_studies", status=StudyStatus.AWAITING_REVIEW, priority="urgent") == 1
    assert value(families, "brainai_studies", status=StudyStatus.ANALYZING, priority="routine") == 1
    assert value(families, "brainai_studies", status=StudyStatus.SIGNED, priority="research") == 0  # every pair
    assert len(families["brainai_studies"]["samples"]) == len(StudyStatus.values) * len(Priority.values)
    assert value(families, "brainai_scans", status=ScanStatus.ANALYZED) == 3
    assert value(families, "brainai_scans", status=ScanStatus.PENDING) == 3
    assert value(families, "brainai_scans", status=ScanStatus.FAILED) == 0
    assert value(families, "brainai_oldest_unfinished_study_age_seconds", status="analyzing") >= 0
    assert value(families, "brainai_oldest_unfinished_study_age_seconds", status="explaining") == 0


def test_the_analysis_histograms_per_slice_and_per_stage(rows):
    families = scrape()
    h = "brainai_analysis_slice_seconds"
    assert value(families, h, f"{h}_count", model="test-model") == 3
    assert value(families, h, f"{h}_sum", model="test-model") == pytest.approx(0.36)
    assert value(families, h, f"{h}_bucket", model="test-model", le="0.025") == 1
    assert value(families, h, f"{h}_bucket", model="test-model", le="0.05") == 2
    assert value(families, h, f"{h}_bucket", model="test-model", le="0.25") == 2
    assert value(families, h, f"{h}_bucket", model="test-model", le="0.5") == 3
    assert value(families, h, f"{h}_bucket", model="test-model", le="+Inf") == 3
    s = "brainai_analysis_stage_seconds"
    assert value(families, s, f"{s}_sum", model="test-model", stage="model") == pytest.approx(0.245)
    assert value(families, s, f"{s}_bucket", model="test-model", stage="model", le="0.025") == 1
    assert value(families, s, f"{s}_sum", model="test-model", stage="maps") == pytest.approx(0.06)
    assert value(families, s, f"{s}_count", model="test-model", stage="faithfulness") == 3
    stages = {dict(k[1])["stage"] for k in families[s]["samples"]}
    assert stages == {"preprocess", "model", "guard", "maps", "saliency", "region", "faithfulness"}
    assert value(families, "brainai_guard_rejections", "brainai_guard_rejections_total", model="test-model") == 1


def test_the_histograms_cover_the_latest_slices_and_the_counts_every_one(rows, settings):
    settings.BRAINAI_METRICS_WINDOW = 2
    families = scrape()
    h = "brainai_analysis_slice_seconds"
    assert value(families, h, f"{h}_count", model="test-model") == 2
    assert value(families, h, f"{h}_sum", model="test-model") == pytest.approx(0.34)  # 0.3 and 0.04: the latest
    assert value(families, "brainai_analysed_slices", "brainai_analysed_slices_total", model="test-model") == 3
    assert value(families, "brainai_guard_rejections", "brainai_guard_rejections_total", model="test-model") == 1
    settings.BRAINAI_METRICS_WINDOW = 1
    h = "brainai_llm_latency_seconds"
    families = scrape()
    assert value(families, h, f"{h}_count", provider="template") == 1  # the later explanation
    assert (f"{h}_count", (("provider", "gemini"),)) not in families[h]["samples"]


def test_openmetrics_when_prometheus_asks_for_it(rows):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    response = Client().get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    names = {f.name for f in openmetrics_families(response.content.decode())}
    assert set(FAMILIES) <= names


def test_llm_latency_and_fallbacks_by_provider(rows):
    families = scrape()
    h = "brainai_llm_latency_seconds"
    assert value(families, h, f"{h}_count", provider="gemini") == 1
    assert value(families, h, f"{h}_sum", provider="gemini") == pytest.approx(1.5)
    assert value(families, h, f"{h}_bucket", provider="gemini", le="1.0") == 0
    assert value(families, h, f"{h}_bucket", provider="gemini", le="2.0") == 1
    assert value(families, h, f"{h}_sum", provider="template") == pytest.approx(8.012)
    assert value(families, "brainai_llm_fallbacks", "brainai_llm_fallbacks_total",
                 provider="gemini", reason="timeout") == 1
    assert len(families["brainai_llm_fallbacks"]["samples"]) == 1


def test_an_amendment_does_not_count_its_copied_explanation_again(rows, radiologist):
    report = rows["first"].report
    signed = services.sign_report(report, radiologist, findings="Mass.", impression="Glioma likely.")
    services.amend_report(signed, radiologist, "Mass, left.", "Glioma likely; see addendum.")
    h = "brainai_llm_latency_seconds"
    assert value(scrape(), h, f"{h}_count", provider="gemini") == 1


def test_notifications_and_dicom_sends_by_outcome(rows):
    families = scrape()
    n = {"target": "ward hook", "kind": "webhook"}
    assert value(families, "brainai_notifications", **n, status="sent") == 1
    assert value(families, "brainai_notifications", **n, status="failed") == 1
    assert value(families, "brainai_notifications", **n, status="pending") == 0
    assert value(families, "brainai_dicom_sends", destination="pacs", kind="cstore", status=DeliveryStatus.SENT) == 1
    assert value(families, "brainai_dicom_sends", destination="pacs", kind="cstore", status="failed") == 0
    assert value(families, "brainai_dicom_sends", destination="down", kind="cstore", status="failed") == 1
    assert value(families, "brainai_dicom_send_attempts", "brainai_dicom_send_attempts_total",
                 destination="down", kind="cstore", status="failed") == 1


def test_no_label_carries_patient_data(rows):
    from scans.models import Patient, Scan, Study

    text = Client().get("/metrics").content.decode()
    secrets = [p.patient_id for p in Patient.objects.all()] + [s.study_instance_uid for s in Study.objects.all()]
    secrets += [s.original_name for s in Scan.objects.all()]
    for secret in filter(None, secrets):
        assert secret not in text


def test_a_broker_that_is_down_says_so_and_the_rest_is_still_exported():
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        families = scrape()
    assert value(families, "brainai_broker_up") == 0
    assert families["brainai_queue_length"]["samples"] == {}
    assert value(families, "brainai_scans", status="pending") == 0


def test_queue_lengths_per_lane_from_the_broker(monkeypatch):
    from scans.services import queue

    monkeypatch.setattr(queue, "lane_lengths", lambda: {"urgent": 2, "routine": 5, "research": 0, "detail": 1})
    families = scrape()
    assert value(families, "brainai_broker_up") == 1
    assert {dict(k[1])["lane"]: v for k, v in families["brainai_queue_length"]["samples"].items()} == {
        "urgent": 2, "routine": 5, "research": 0, "detail": 1}


def test_a_broker_that_hangs_does_not_hold_the_scrape(monkeypatch):
    import threading

    from brainai_site import metrics
    from scans.services import queue

    release = threading.Event()
    monkeypatch.setattr(queue, "lane_lengths", lambda: release.wait(30) and {"urgent": 1})
    monkeypatch.setattr(metrics, "QUEUE_TIMEOUT_S", 0.2)
    try:
        families = scrape()
    finally:
        release.set()
    assert value(families, "brainai_broker_up") == 0


@pytest.mark.parametrize("reason, labels", [
    ("timeout: gemini (gemini-2.5-flash) gave no answer within 8 s", ("gemini", "timeout")),
    ("http_error: openai (llama-3) HTTP 503; gave up after 3 attempts", ("openai", "http_error")),
    ("invalid finding: label 'x' is not one of ...", ("none", "invalid_finding")),
    ("Patient Quimby said something", ("unknown", "other")),
    ("", ("unknown", "other")),
])
def test_fallback_reasons_become_fixed_labels(reason, labels):
    from brainai_site.metrics import fallback_labels

    assert fallback_labels(reason) == labels


# --- the sample Grafana dashboard ---------------------------------------------------------------


def test_the_grafana_dashboard_draws_what_we_export(rows, monkeypatch):
    import json
    import re
    from pathlib import Path

    from scans.services import queue

    monkeypatch.setattr(queue, "lane_lengths", lambda: {"urgent": 0, "routine": 1, "research": 0, "detail": 0})

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"

    # Every sample name a scrape of these rows exports (histograms: _bucket, _sum, _count).
    exported = {name for family in scrape().values() for name, _ in family["samples"]}
    drawn = set()
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            names = set(re.findall(r"\bbrainai_[a-z_]+", target["expr"]))
            assert names, f"{panel['title']}: {target['expr']}"
            assert names <= exported, f"{panel['title']} draws what we do not export: {names - exported}"
            drawn |= names
    families_drawn = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in drawn}
    assert set(FAMILIES) <= families_drawn | {n for n in drawn}, set(FAMILIES) - families_drawn
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
