"""The audit trail is append-only, keeps its ids when rows go, and records every PHI read.

The raw-SQL tests run on the database the suite runs on: SQLite here, PostgreSQL where
DATABASE_URL points at one (CI), so each vendor's trigger is tested where it exists.
"""
from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse

from scans import services
from scans.models import AuditAction, AuditEvent, Study, Via
from scans.models.audit import AppendOnly

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(ready_report, radiologist):
    return services.audit(AuditAction.UPDATE_REVIEW, radiologist, via=Via.PORTAL, report=ready_report)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_model_refuses_to_change_or_delete_an_event(event):
    event.action = AuditAction.SIGN_REPORT
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="sign_report")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == AuditAction.UPDATE_REVIEW


@pytest.mark.parametrize("sql", ["UPDATE scans_auditevent SET action = 'sign_report'",
                                 "DELETE FROM scans_auditevent"])
def test_the_database_refuses_update_and_delete_from_any_client(event, sql):
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.filter(pk=event.pk, action=AuditAction.UPDATE_REVIEW).exists()


def test_the_triggers_exist_after_every_migration():
    """A later AlterField on AuditEvent remakes the table on SQLite and drops them."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'scans_auditevent'")
            expected = {"scans_auditevent_no_update", "scans_auditevent_no_delete"}
        else:
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'scans_auditevent'::regclass "
                           "AND NOT tgisinternal")
            expected = {"scans_auditevent_append_only"}
        assert {row[0] for row in cursor.fetchall()} == expected


def test_deleting_a_study_leaves_its_audit_rows_as_they_were(event, ready_report):
    study_id, report_id = ready_report.study_id, ready_report.pk
    Study.objects.filter(pk=study_id).delete()

    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.study_id, kept.report_id) == (study_id, report_id)
    assert AuditEvent.objects.filter(report_id=report_id).count() >= 1


def test_deleting_a_user_keeps_their_id_and_name(event, radiologist):
    radiologist_id = radiologist.pk
    # The radiologist reviewed nothing here, so no PROTECTed report holds them.
    type(radiologist).objects.filter(pk=radiologist_id).delete()
    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.actor_id, kept.actor_username) == (radiologist_id, "rita")


def _last(action) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).order_by("-id").first()


def test_review_sign_and_amend_store_the_ip_portal_and_api(ready_report, radiologist, radiologist_api):
    client = _client(radiologist)
    form = {"findings": "Mass.", "impression": "Glioma."}
    client.post(reverse("scans:report-review", args=[ready_report.pk]), form, REMOTE_ADDR="10.1.2.3")
    assert _last(AuditAction.UPDATE_REVIEW).ip_address == "10.1.2.3"
    client.post(reverse("scans:report-sign", args=[ready_report.pk]), form, REMOTE_ADDR="10.1.2.4")
    assert _last(AuditAction.SIGN_REPORT).ip_address == "10.1.2.4"
    client.post(reverse("scans:report-amend", args=[ready_report.pk]),
                {"amend-findings": "Revised.", "amend-impression": "Revised."}, REMOTE_ADDR="10.1.2.5")
    assert _last(AuditAction.AMEND_REPORT).ip_address == "10.1.2.5"

    amended = _last(AuditAction.AMEND_REPORT).report_id
    radiologist_api.post(f"/api/v1/reports/{amended}/amend/", form, format="json", REMOTE_ADDR="10.9.9.9")
    assert _last(AuditAction.AMEND_REPORT).ip_address == "10.9.9.9"
    assert _last(AuditAction.AMEND_REPORT).via == Via.API


def test_api_study_detail_and_lists_are_recorded_with_ids_only(ready_report, staff_api, staff_user):
    staff_api.get(f"/api/v1/studies/{ready_report.study_id}/", REMOTE_ADDR="10.0.0.7")
    event = _last(AuditAction.VIEW_STUDY)
    assert (event.study_id, event.actor_id, event.via, event.ip_address) == (
        ready_report.study_id, staff_user.pk, Via.API, "10.0.0.7")

    staff_api.get("/api/v1/reports/")
    assert _last(AuditAction.LIST_REPORTS).detail == {"ids": [ready_report.pk]}
    staff_api.get("/api/v1/studies/")
    assert _last(AuditAction.LIST_STUDIES).detail == {"ids": [ready_report.study_id]}
    assert "P-100" not in str(_last(AuditAction.LIST_STUDIES).detail)


def test_admin_report_and_study_pages_are_recorded(ready_report, clinic_admin):
    client = _client(clinic_admin)
    assert client.get(reverse("admin:scans_report_change", args=[ready_report.pk])).status_code == 200
    event = _last(AuditAction.VIEW_REPORT)
    assert (event.report_id, event.via, event.actor_id) == (ready_report.pk, Via.ADMIN, clinic_admin.pk)
    assert client.get(reverse("admin:scans_study_change", args=[ready_report.study_id])).status_code == 200
    assert _last(AuditAction.VIEW_STUDY).via == Via.ADMIN


def test_media_fetches_are_recorded_for_session_and_token(ready_report, staff_user, staff_api):
    name = ready_report.study.scans.first().image.name
    assert _client(staff_user).get(f"/media/{name}").status_code == 200
    event = _last(AuditAction.VIEW_MEDIA)
    assert (event.detail, event.via, event.actor_id) == ({"path": name}, Via.PORTAL, staff_user.pk)
    assert staff_api.get(f"/media/{name}").status_code == 200
    assert _last(AuditAction.VIEW_MEDIA).via == Via.API


def test_a_refused_media_fetch_records_nothing(ready_report, outsider):
    name = ready_report.study.scans.first().image.name
    before = AuditEvent.objects.filter(action=AuditAction.VIEW_MEDIA).count()
    assert _client(outsider).get(f"/media/{name}").status_code == 403
    assert Client().get(f"/media/{name}").status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_MEDIA).count() == before


def test_the_audit_admin_lists_events_whose_study_is_gone(ready_report, clinic_admin, radiologist):
    services.audit(AuditAction.UPDATE_REVIEW, radiologist, report=ready_report)
    Study.objects.filter(pk=ready_report.study_id).delete()
    client = _client(clinic_admin)
    assert client.get(reverse("admin:scans_auditevent_changelist")).status_code == 200
    event = AuditEvent.objects.filter(report_id=ready_report.pk).first()
    assert client.get(reverse("admin:scans_auditevent_change", args=[event.pk])).status_code == 200
