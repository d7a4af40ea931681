"""What reviewers teach the model (issue #20, part 5): the structured verdict at sign-off
(service, portal, API, snapshot) and the reviewer analytics (figures, page, API, access)."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from scans import services, snapshot
from scans.models import AuditAction, AuditEvent, EventKind, PipelineEvent, Report, ReportStatus
from scans.services.analytics import quantile, reviewer_analytics
from tests import builders as b

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc


# --- the verdict at sign-off: the service -------------------------------------------------


def test_sign_records_a_disagreement_with_the_correct_label_in_the_row_the_snapshot_and_the_audit(
        ready_report, radiologist):
    signed = services.sign_report(ready_report, radiologist, verdict="disagree", verdict_label="meningioma")
    signed.refresh_from_db()
    assert (signed.status, signed.verdict, signed.verdict_label) == (ReportStatus.SIGNED, "disagree", "meningioma")
    assert signed.snapshot["format"] == 2
    assert signed.snapshot["review"]["verdict"] == "disagree"
    assert signed.snapshot["review"]["verdict_label"] == "meningioma"
    assert snapshot.is_intact(signed)
    event = AuditEvent.objects.get(action=AuditAction.SIGN_REPORT, report_id=signed.pk)
    assert event.detail["verdict"] == "disagree"


def test_the_snapshot_hash_covers_the_verdict(ready_report, radiologist):
    signed = services.sign_report(ready_report, radiologist, verdict="agree")
    assert signed.snapshot["review"]["verdict"] == "agree" and snapshot.is_intact(signed)
    for verdict, label in (("disagree", "pituitary"), ("not_assessable", ""), ("", "")):
        changed = {**signed.snapshot, "review": {**signed.snapshot["review"], "verdict": verdict,
                                                  "verdict_label": label}}
        assert snapshot.digest(changed) != signed.snapshot_sha256
    signed.snapshot["review"]["verdict"] = "disagree"  # tampered with, in memory
    assert snapshot.is_intact(signed) is False


def test_a_verdict_is_optional_and_blank_means_not_recorded(ready_report, radiologist):
    signed = services.sign_report(ready_report, radiologist)
    assert (signed.verdict, signed.verdict_label) == ("", "")
    assert signed.snapshot["review"]["verdict"] == "" and signed.snapshot["review"]["verdict_label"] == ""


@pytest.mark.parametrize("verdict,label,field,words", [
    ("disagree", "", "verdict_label", "give the correct label"),
    ("disagree", "not_brain_mri", "verdict_label", "unknown label"),
    ("disagree", "glioma", "verdict_label", "the AI already says glioma"),  # the AI label of ready_report
    ("agree", "meningioma", "verdict_label", "only when you disagree"),
    ("not_assessable", "glioma", "verdict_label", "only when you disagree"),
    ("maybe", "", "verdict", "unknown verdict"),
])
def test_a_verdict_that_does_not_hold_together_is_refused_and_nothing_is_signed(
        ready_report, radiologist, verdict, label, field, words):
    with pytest.raises(services.InvalidVerdict, match=words) as caught:
        services.sign_report(ready_report, radiologist, verdict=verdict, verdict_label=label,
                             findings="changed text")
    assert caught.value.field == field
    ready_report.refresh_from_db()
    assert ready_report.status == ReportStatus.AWAITING_REVIEW and ready_report.findings == ""
    assert (ready_report.verdict, ready_report.verdict_label) == ("", "")


def test_a_draft_verdict_is_kept_and_signed_when_sign_off_gives_none(ready_report, radiologist):
    services.update_review(ready_report, radiologist, "text", "impression", verdict="not_assessable")
    ready_report.refresh_from_db()
    assert ready_report.verdict == "not_assessable" and ready_report.status == ReportStatus.AWAITING_REVIEW
    signed = services.sign_report(ready_report, radiologist)
    assert signed.verdict == "not_assessable" and signed.snapshot["review"]["verdict"] == "not_assessable"


def test_a_rerun_clears_a_draft_verdict_with_the_finding_it_judged(ready_report, radiologist, sent):
    services.update_review(ready_report, radiologist, "text", "", verdict="disagree", verdict_label="pituitary")
    services.rerun_analysis(ready_report.study, radiologist)
    ready_report.refresh_from_db()
    assert ready_report.status == ReportStatus.PROCESSING and ready_report.label == ""
    assert (ready_report.verdict, ready_report.verdict_label, ready_report.findings) == ("", "", "text")


def test_an_amendment_carries_the_signed_verdict(ready_report, radiologist):
    signed = services.sign_report(ready_report, radiologist, verdict="disagree", verdict_label="pituitary")
    new = services.amend_report(signed, radiologist, "amended", "amended impression")
    assert (new.verdict, new.verdict_label) == ("disagree", "pituitary")
    assert new.snapshot["review"]["verdict_label"] == "pituitary" and snapshot.is_intact(new)


# --- the verdict at sign-off: the portal ----------------------------------------------------


def test_the_portal_form_offers_the_verdict_and_signs_it(client, ready_report, radiologist):
    client.force_login(radiologist)
    page = client.get(reverse("scans:report", args=[ready_report.pk])).content.decode()
    assert 'name="verdict"' in page and 'name="verdict_label"' in page and 'value="not_assessable"' in page
    response = client.post(reverse("scans:report-sign", args=[ready_report.pk]),
                           {"findings": "f", "impression": "i", "verdict": "disagree", "verdict_label": "notumor"},
                           follow=True)
    assert response.status_code == 200
    ready_report.refresh_from_db()
    assert (ready_report.status, ready_report.verdict, ready_report.verdict_label) == ("signed", "disagree", "notumor")
    html = response.content.decode()
    assert 'id="verdict-text"' in html and "Disagrees (correct label given): No tumour" in html
    printed = client.get(reverse("scans:report-print", args=[ready_report.pk])).content.decode()
    assert "Verdict on the AI finding:</strong> Disagrees (correct label given): No tumour" in printed


def test_the_portal_shows_a_form_error_for_a_disagreement_without_a_label(client, ready_report, radiologist):
    client.force_login(radiologist)
    response = client.post(reverse("scans:report-sign", args=[ready_report.pk]),
                           {"findings": "f", "impression": "i", "verdict": "disagree", "verdict_label": ""})
    assert response.status_code == 400
    assert "give the correct label when you disagree with the AI" in response.content.decode()
    ready_report.refresh_from_db()
    assert ready_report.status == ReportStatus.AWAITING_REVIEW and ready_report.verdict == ""


def test_the_portal_draft_keeps_the_verdict_checked(client, ready_report, radiologist):
    client.force_login(radiologist)
    client.post(reverse("scans:report-review", args=[ready_report.pk]),
                {"findings": "f", "impression": "i", "verdict": "agree", "verdict_label": ""})
    ready_report.refresh_from_db()
    assert ready_report.verdict == "agree"
    page = client.get(reverse("scans:report", args=[ready_report.pk])).content.decode()
    assert re.search(r'<input[^>]*name="verdict" value="agree"[^>]*checked', page)
    assert not re.search(r'<input[^>]*name="verdict" value="disagree"[^>]*checked', page)


# --- the verdict at sign-off: the API -------------------------------------------------------


def test_the_api_signs_a_verdict_and_shows_it(radiologist_api, ready_report):
    response = radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/",
                                    {"verdict": "disagree", "verdict_label": "meningioma"}, format="json")
    assert response.status_code == 200, response.content
    review = response.json()["review"]
    assert review["verdict"] == "disagree" and review["verdict_label"] == "meningioma"
    again = radiologist_api.get(f"/api/v1/reports/{ready_report.pk}/").json()["review"]
    assert again["verdict_label"] == "meningioma"
    raw = radiologist_api.get(f"/api/v1/reports/{ready_report.pk}/snapshot/").content
    assert json.loads(raw)["review"]["verdict"] == "disagree"


@pytest.mark.parametrize("body,field", [
    ({"verdict": "disagree"}, "verdict_label"),
    ({"verdict": "disagree", "verdict_label": "glioma"}, "verdict_label"),  # what the AI says already
    ({"verdict": "disagree", "verdict_label": "indeterminate"}, "verdict_label"),
    ({"verdict": "agree", "verdict_label": "pituitary"}, "verdict_label"),
    ({"verdict": "perhaps"}, "verdict"),
    ({"verdict_label": "pituitary"}, "verdict"),
])
def test_the_api_answers_400_for_a_bad_verdict(radiologist_api, ready_report, body, field):
    response = radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    ready_report.refresh_from_db()
    assert ready_report.status == ReportStatus.AWAITING_REVIEW


def test_the_api_unrecorded_verdict_reads_null(radiologist_api, ready_report):
    review = radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/", {}, format="json").json()["review"]
    assert review["verdict"] is None and review["verdict_label"] is None


def test_the_openapi_schema_describes_the_verdict_and_the_analytics(radiologist_api):
    schema = radiologist_api.get("/api/v1/schema/", {"format": "json"}).json()
    sign = schema["components"]["schemas"]["Sign"]["properties"]
    assert {"verdict", "verdict_label", "findings", "impression"} <= set(sign)
    analytics = schema["paths"]["/api/v1/analytics/"]["get"]
    assert {p["name"] for p in analytics["parameters"]} >= {"date_from", "date_to"}
    model = schema["components"]["schemas"]["AnalyticsModel"]["properties"]
    assert {"agreement_rate", "confusion", "calibration", "time_to_sign", "labels"} <= set(model)


# --- the analytics: figures on built reports -----------------------------------------------

T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _signed(staff, radiologist, seed, ai_label, verdict, verdict_label="", *, confidence, seconds,
            ready=T0, event=True, model_version=None, amend_after=None):
    """A one-slice report with ``ai_label`` at ``confidence``, ready at ``ready`` (its FINALISED
    event, or only its explanation time when ``event`` is False) and signed ``seconds`` later."""
    study = b.upload_study(staff, 1, seed=seed)
    report = b.explain_and_finalize(b.analyse_study(study, (ai_label,), confidence=confidence))
    assert report.label == ai_label and report.confidence == pytest.approx(confidence)
    if model_version:
        Report.objects.filter(pk=report.pk).update(model_version=model_version)
    finalised = PipelineEvent.objects.filter(study=study, kind=EventKind.FINALISED)
    if event:
        if not finalised.exists():
            PipelineEvent.objects.create(study=study, kind=EventKind.FINALISED)
        finalised.update(created_at=ready)
    else:
        finalised.delete()
        Report.objects.filter(pk=report.pk).update(explanation_generated_at=ready)
    report = Report.objects.get(pk=report.pk)
    signed = services.sign_report(report, radiologist, verdict=verdict, verdict_label=verdict_label)
    Report.objects.filter(pk=signed.pk).update(signed_at=ready + dt.timedelta(seconds=seconds))
    if amend_after is not None:
        new = services.amend_report(Report.objects.get(pk=signed.pk), radiologist, "amended", "amended")
        Report.objects.filter(pk=new.pk).update(signed_at=ready + dt.timedelta(seconds=amend_after))
    return signed


@pytest.fixture
def verdicts(staff_user, radiologist):
    """Model test-model 0123456789ab: 4 glioma and 3 notumor findings in March, 1 glioma in
    February; model version v2: 1 pituitary in March; 1 report awaiting review (not counted)."""
    s, r = staff_user, radiologist
    _signed(s, r, 1, "glioma", "agree", confidence=0.95, seconds=600)
    _signed(s, r, 2, "glioma", "agree", confidence=0.92, seconds=1200, amend_after=5000)  # timed to 1st signature
    _signed(s, r, 3, "glioma", "disagree", "meningioma", confidence=0.65, seconds=3000)
    _signed(s, r, 4, "glioma", "not_assessable", confidence=0.91, seconds=300)
    _signed(s, r, 5, "notumor", "agree", confidence=0.85, seconds=60)
    _signed(s, r, 6, "notumor", "disagree", "glioma", confidence=0.55, seconds=7200, event=False)
    _signed(s, r, 7, "notumor", "", confidence=0.80, seconds=120)
    _signed(s, r, 8, "pituitary", "agree", confidence=0.97, seconds=900, model_version="v2")
    _signed(s, r, 9, "glioma", "disagree", "pituitary", confidence=0.75, seconds=100,
            ready=dt.datetime(2026, 2, 15, 9, 0, tzinfo=UTC))
    b.ready_report(s, 1, seed=10)  # awaiting review: no verdict yet, not in the figures


MARCH = {"date_from": dt.date(2026, 3, 1), "date_to": dt.date(2026, 3, 31)}


def test_the_figures_per_model_and_label_are_those_counted_by_hand(verdicts):
    figures = reviewer_analytics(**MARCH)
    assert figures["n"] == 8 and figures["date_from"] == "2026-03-01" and figures["date_to"] == "2026-03-31"
    a, v2 = figures["models"]
    assert (a["model_name"], a["model_version"], v2["model_version"]) == ("test-model", "0123456789ab", "v2")

    assert a["n"] == 7
    assert a["verdicts"] == {"agree": 3, "disagree": 2, "not_assessable": 1, "not_recorded": 1}
    assert a["agreement_rate"] == pytest.approx(3 / 5)
    # sorted: 60 120 300 600 1200 3000 7200; p90 at 0.9 * 6 = 5.4 -> 3000 + 0.4 * 4200
    assert a["time_to_sign"] == {"n": 7, "median_s": 600.0, "p90_s": pytest.approx(4680.0),
                                 "from_event": 6, "from_explanation": 1}
    # bins: 0.9-1 {.95 agree, .92 agree}, 0.8-0.9 {.85 agree}, 0.6-0.7 {.65 disagree}, 0.5-0.6 {.55 disagree}
    cal = a["calibration"]
    assert cal["n"] == 5 and len(cal["bins"]) == 10
    assert [b_["n"] for b_ in cal["bins"]] == [0, 0, 0, 0, 0, 1, 1, 0, 1, 2]
    assert cal["bins"][9]["mean_confidence"] == pytest.approx(0.935) and cal["bins"][9]["observed_agreement"] == 1.0
    assert cal["bins"][6]["observed_agreement"] == 0.0 and cal["bins"][0]["mean_confidence"] is None
    assert cal["ece"] == pytest.approx(0.4 * 0.065 + 0.2 * 0.15 + 0.2 * 0.65 + 0.2 * 0.55)  # 0.296

    assert a["confusion"]["columns"] == ["glioma", "meningioma", "notumor", "pituitary", "not_assessable"]
    assert a["confusion"]["rows"] == [
        {"ai_label": "glioma", "counts": [2, 1, 0, 0, 1], "total": 4},
        {"ai_label": "notumor", "counts": [1, 0, 1, 0, 0], "total": 2},  # the unrecorded one is not in it
    ]

    glioma, notumor = a["labels"]
    assert glioma["label"] == "glioma" and glioma["n"] == 4 and glioma["agreement_rate"] == pytest.approx(2 / 3)
    assert glioma["time_to_sign"]["median_s"] == 900.0 and glioma["time_to_sign"]["p90_s"] == pytest.approx(2460.0)
    assert glioma["calibration"]["ece"] == pytest.approx(2 / 3 * 0.065 + 1 / 3 * 0.65)
    assert notumor["verdicts"] == {"agree": 1, "disagree": 1, "not_assessable": 0, "not_recorded": 1}
    assert notumor["agreement_rate"] == 0.5
    assert notumor["time_to_sign"]["median_s"] == 120.0 and notumor["time_to_sign"]["p90_s"] == pytest.approx(5784.0)

    assert v2["n"] == 1 and v2["agreement_rate"] == 1.0 and v2["calibration"]["ece"] == pytest.approx(0.03)
    assert v2["confusion"]["rows"] == [{"ai_label": "pituitary", "counts": [0, 0, 0, 1, 0], "total": 1}]


def test_the_date_range_is_on_the_signature_and_open_ends_take_everything(verdicts):
    whole = reviewer_analytics()
    assert whole["n"] == 9 and whole["date_from"] is None
    a = whole["models"][0]
    assert a["verdicts"]["disagree"] == 3 and a["confusion"]["rows"][0]["counts"] == [2, 1, 0, 1, 1]
    february = reviewer_analytics(date_from=dt.date(2026, 2, 15), date_to=dt.date(2026, 2, 15))
    assert february["n"] == 1 and february["models"][0]["agreement_rate"] == 0.0
    assert reviewer_analytics(date_from=dt.date(2026, 4, 1))["models"] == []


def test_quantile_interpolates_like_numpy():
    import numpy as np

    for values in ([5.0], [1.0, 2.0], [3.0, 1.0, 10.0, 7.5, 2.0]):
        for q in (0.0, 0.5, 0.9, 1.0):
            assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))
    assert quantile([], 0.5) is None


# --- the analytics: page, API, access, audit ------------------------------------------------


def test_the_page_shows_the_figures_audits_the_view_and_names_no_patient(client, verdicts, radiologist):
    client.force_login(radiologist)
    response = client.get(reverse("scans:analytics"), {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "8 signed reports" in html and "agreement 60.0%" in html and "ECE 0.296" in html
    assert "median 10.0 min, p90 78.0 min" in html
    assert ('<tr data-label="glioma"><th scope="row">glioma</th><td>2</td><td>1</td><td>0</td><td>0</td><td>1</td>'
            in html)
    assert "P-100" not in html  # the builders' patient id
    event = AuditEvent.objects.filter(action=AuditAction.VIEW_ANALYTICS).get()
    assert event.actor_id == radiologist.pk and event.via == "portal"
    assert event.detail == {"reports": 8, "date_from": "2026-03-01", "date_to": "2026-03-31"}


def test_the_page_refuses_a_range_that_ends_before_it_starts(client, radiologist):
    client.force_login(radiologist)
    response = client.get(reverse("scans:analytics"), {"date_from": "2026-03-31", "date_to": "2026-03-01"})
    assert response.status_code == 400 and "before its start" in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.VIEW_ANALYTICS).exists()


def test_the_api_gives_the_same_figures(verdicts, radiologist_api):
    response = radiologist_api.get("/api/v1/analytics/", {"date_from": "2026-03-01", "date_to": "2026-03-31"})
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(reviewer_analytics(**MARCH)))
    event = AuditEvent.objects.filter(action=AuditAction.VIEW_ANALYTICS).get()
    assert event.via == "api" and event.detail["reports"] == 8
    assert radiologist_api.get("/api/v1/analytics/", {"date_from": "March"}).status_code == 400


def test_only_radiologists_and_admins_see_the_analytics(client, staff_user, outsider, clinic_admin, radiologist,
                                                        django_user_model):
    operator = b.make_user(django_user_model, "opal", "operator")
    for user, code in ((radiologist, 200), (clinic_admin, 200), (staff_user, 403), (outsider, 403), (operator, 403)):
        client.force_login(user)
        assert client.get(reverse("scans:analytics")).status_code == code, user.username
        assert b.token_client(user).get("/api/v1/analytics/").status_code == code, user.username
        if user not in (outsider, operator):  # the worklist is theirs: the nav shows the link to whom it serves
            assert ('href="/analytics/"' in client.get("/").content.decode()) == (code == 200), user.username
    client.logout()
    response = client.get(reverse("scans:analytics"))
    assert response.status_code == 302 and "/login" in response["Location"]
    assert APIClient().get("/api/v1/analytics/").status_code == 401
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_ANALYTICS).count() == 4  # 2 users x page + API

