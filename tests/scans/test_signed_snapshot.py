"""A signed report is a snapshot: what the radiologist saw, frozen and hashed (scans.snapshot).

Later changes to the live rows (a later detail pass, an admin action, a bug) must never
show in a signed version: not on the portal page, the print view, the API or the admin.
"""
from __future__ import annotations

import hashlib
import json

import pytest
from django.test import Client
from django.urls import reverse

from scans import services, snapshot
from scans.models import Analysis, Report, Scan, ScanStatus

pytestmark = pytest.mark.django_db

MARKER = "LIVE-ROW-CHANGED-AFTER-SIGNING"


@pytest.fixture
def signed(ready_report, radiologist):
    services.sign_report(ready_report, radiologist, findings="Mass.", impression="Glioma likely.")
    return Report.objects.get(pk=ready_report.pk)


def _change_the_live_rows(report) -> Scan:
    """What a later pass or a stray write would do to the rows a signed report was drawn from."""
    scan = report.study.scans.order_by("id").first()
    Analysis.objects.filter(scan=scan).update(label="pituitary", confidence=0.4321,
                                              probabilities={"pituitary": 0.4321}, faithfulness={"gain": 9})
    Scan.objects.filter(pk=scan.pk).update(error=MARKER)
    return scan


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_signing_stores_the_snapshot_and_its_sha256(signed):
    snap = signed.snapshot
    assert snap["finding"]["label"] == "glioma" and snap["finding"]["key_scan"] == signed.key_scan_id
    assert snap["model"] == {"name": signed.model_name, "version": signed.model_version}
    assert snap["explanation"]["text"] == signed.explanation_text
    assert snap["review"]["impression"] == "Glioma likely." and snap["review"]["signed_by"] == "rita"
    assert [s["id"] for s in snap["slices"]] == sorted(signed.study.scans.values_list("id", flat=True))
    assert all(s["analysis"]["label"] == "glioma" and s["analysis"]["overlay"] for s in snap["slices"])
    canonical = json.dumps(snap, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert signed.snapshot_sha256 == hashlib.sha256(canonical).hexdigest()
    assert snapshot.is_intact(signed) is True


def test_an_unsigned_report_has_no_snapshot(ready_report):
    assert ready_report.snapshot is None and ready_report.snapshot_sha256 == ""
    assert snapshot.is_intact(ready_report) is None


def test_the_portal_page_and_print_view_show_the_snapshot_not_the_live_rows(signed, staff_user):
    _change_the_live_rows(signed)
    client = _client(staff_user)
    for name in ("scans:report", "scans:report-print"):
        page = client.get(reverse(name, args=[signed.pk])).content.decode()
        assert MARKER not in page and "43.2%" not in page, name
        assert signed.snapshot_sha256 in page, name
    page = client.get(reverse("scans:report", args=[signed.pk])).content.decode()
    assert '">Pituitary tumour</span>' not in page  # the changed slice's label badge


def test_the_api_shows_the_snapshot_and_serves_the_bytes_its_hash_is_taken_over(signed, staff_api):
    scan = _change_the_live_rows(signed)
    body = staff_api.get(f"/api/v1/reports/{signed.pk}/").json()

    row = next(r for r in body["scans"] if r["id"] == scan.pk)
    assert row["label"] == "glioma" and row["error"] == "" and row["confidence"] == pytest.approx(0.9)
    assert row["probabilities"]["glioma"] > 0.5
    assert body["snapshot"]["sha256"] == signed.snapshot_sha256 and body["snapshot"]["intact"] is True
    raw = staff_api.get(body["snapshot"]["url"])
    assert raw.status_code == 200 and raw["Content-Type"] == "application/json"
    assert hashlib.sha256(raw.content).hexdigest() == signed.snapshot_sha256
    assert json.loads(raw.content)["slices"][0]["error"] == ""


def test_a_tampered_snapshot_no_longer_matches_its_hash(signed, staff_api, staff_user):
    tampered = dict(signed.snapshot, finding={**signed.snapshot["finding"], "label": "notumor"})
    Report.objects.filter(pk=signed.pk).update(snapshot=tampered)

    assert staff_api.get(f"/api/v1/reports/{signed.pk}/").json()["snapshot"]["intact"] is False
    assert "does not match its content" in _client(staff_user).get(reverse("scans:report", args=[signed.pk])).content.decode()


def test_a_version_that_is_not_signed_has_no_snapshot_to_fetch(ready_report, staff_api):
    assert staff_api.get(f"/api/v1/reports/{ready_report.pk}/").json()["snapshot"] is None
    assert staff_api.get(f"/api/v1/reports/{ready_report.pk}/snapshot/").status_code == 404


def test_an_amendment_keeps_what_was_signed_with_the_new_review(signed, radiologist):
    _change_the_live_rows(signed)
    new = services.amend_report(signed, radiologist, "Revised.", "Meningioma more likely.")

    new.refresh_from_db()
    signed_before = Report.objects.get(pk=signed.pk)
    assert new.snapshot["slices"] == signed_before.snapshot["slices"]  # the signed AI part, not the rows now
    assert new.snapshot["review"]["impression"] == "Meningioma more likely."
    assert (new.snapshot["version"], new.snapshot["previous_version"]) == (2, 1)
    assert snapshot.is_intact(new) and new.snapshot_sha256 != signed_before.snapshot_sha256
    assert snapshot.is_intact(signed_before) and signed_before.snapshot["review"]["impression"] == "Glioma likely."


def test_a_slice_of_a_signed_study_cannot_be_marked_failed(signed, clinic_admin):
    scan = signed.study.scans.first()
    with pytest.raises(services.InvalidState):
        services.mark_failed(scan, clinic_admin, "bad slice")
    with pytest.raises(services.InvalidState):
        services.mark_failed(signed.study, clinic_admin, "bad study")
    assert Scan.objects.get(pk=scan.pk).status == ScanStatus.ANALYZED


def test_the_admin_cannot_change_a_signed_study(signed, clinic_admin):
    client = _client(clinic_admin)
    scan = signed.study.scans.first()
    for model, action, pk in (("scan", "mark_failed", scan.pk), ("study", "mark_failed", signed.study_id),
                              ("study", "rerun_analysis", signed.study_id),
                              ("report", "regenerate_explanation", signed.pk)):
        client.post(reverse(f"admin:scans_{model}_changelist"), {"action": action, "_selected_action": [pk],
                                                                  "reason": "x"})
    assert Scan.objects.get(pk=scan.pk).status == ScanStatus.ANALYZED
    after = Report.objects.get(pk=signed.pk)
    assert after.status == signed.status and after.snapshot == signed.snapshot and not after.explanation_pending
    assert client.post(reverse("admin:scans_report_change", args=[signed.pk]), {"label": "notumor"}).status_code == 403


def test_an_unsigned_report_still_reads_the_live_rows(ready_report, staff_api):
    scan = _change_the_live_rows(ready_report)
    row = next(r for r in staff_api.get(f"/api/v1/reports/{ready_report.pk}/").json()["scans"] if r["id"] == scan.pk)
    assert row["label"] == "pituitary" and row["error"] == MARKER


def test_signing_through_the_api_stores_the_same_snapshot_shape(ready_report, radiologist_api):
    body = radiologist_api.post(f"/api/v1/reports/{ready_report.pk}/sign/").json()
    stored = Report.objects.get(pk=ready_report.pk)
    assert body["snapshot"]["sha256"] == stored.snapshot_sha256 == snapshot.digest(stored.snapshot)
    assert stored.snapshot["review"]["signed_by"] == "rita"


def test_no_portal_or_api_path_changes_a_signed_version(signed, radiologist, radiologist_api):
    portal = _client(radiologist)
    text = {"findings": "changed", "impression": "changed"}
    for name in ("scans:report-review", "scans:report-sign", "scans:report-explanation"):
        portal.post(reverse(name, args=[signed.pk]), text)
    portal.post(reverse("scans:study-rerun", args=[signed.study_id]))
    codes = [radiologist_api.post(f"/api/v1/reports/{signed.pk}/{verb}/", text, format="json").status_code
             for verb in ("review", "sign", "explanation")]
    assert codes == [409, 409, 409]
    after = Report.objects.get(pk=signed.pk)
    assert (after.findings, after.status, after.snapshot, after.snapshot_sha256) == (
        "Mass.", signed.status, signed.snapshot, signed.snapshot_sha256)
    assert not after.explanation_pending and snapshot.is_intact(after)
    assert list(after.study.scans.values_list("status", flat=True)) == [ScanStatus.ANALYZED] * 2
