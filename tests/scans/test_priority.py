"""Priority lanes (issue #20): the rules, the research window, set_priority and where the
lane shows (API, admin, worklist). What needs a real broker and worker is in
tests/e2e/test_priority_lanes.py."""
from __future__ import annotations

import logging
from datetime import datetime

import pytest
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.urls import reverse

from brainai_site.lanes import in_window, parse_hours, parse_rules
from scans import services
from scans.models import AuditAction, AuditEvent, EventKind, PipelineEvent, Priority, Study
from scans.services import priority as lanes
from scans.services.queue import ANALYZE_STUDY, LANE_STEP, LANES, lane_step
from tests import builders as b

pytestmark = pytest.mark.django_db

RULES = ('[{"calling_ae": "ER_MRI", "priority": "urgent"},'
         ' {"description": "(?i)stroke|trauma", "priority": "urgent"},'
         ' {"calling_ae": "RESEARCH1", "description": "^Trial", "priority": "research"}]')


@pytest.fixture
def published(monkeypatch):
    """What would be published, with the priority step each message carries."""
    from brainai_site.celery import app

    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, args=None, **kw: calls.append(
        (name, tuple(args or ()), kw.get("priority"))))
    return calls


@pytest.fixture
def operator(django_user_model):
    return b.make_user(django_user_model, "opal", "operator")


def _local(hour: int) -> datetime:
    from django.utils import timezone

    return timezone.make_aware(datetime(2026, 1, 15, hour, 30))


# --- the settings' parsers (no Django) ---------------------------------------------------


def test_rules_parse_and_match_on_every_condition_they_name():
    ae, description, both = parse_rules(RULES)
    assert ae.matches(calling_ae=" ER_MRI ") and not ae.matches(calling_ae="ER_MRI2")
    assert description.matches(description="MRI head, STROKE protocol")
    assert not description.matches(description="MRI head routine")
    assert both.matches(calling_ae="RESEARCH1", description="Trial 7 T1")
    assert not both.matches(calling_ae="RESEARCH1", description="MRI head")
    assert not both.matches(calling_ae="OTHER", description="Trial 7 T1")
    assert parse_rules("") == () and parse_rules(None) == ()


def test_rules_from_a_file(tmp_path):
    path = tmp_path / "rules.json"
    path.write_text('[{"description": "urgent", "priority": "urgent"}]')
    (rule,) = parse_rules(f"@{path}")
    assert rule.priority == "urgent"
    with pytest.raises(ValueError, match="cannot read"):
        parse_rules(f"@{tmp_path / 'missing.json'}")


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ('{"priority": "urgent"}', "JSON list"),
    ('[{"priority": "urgent"}]', "no condition"),
    ('[{"calling_ae": "X", "priority": "soon"}]', "priority must be one of"),
    ('[{"description": "(", "priority": "urgent"}]', "bad description pattern"),
    ('[{"calling_ae": "X", "priority": "urgent", "modality": "MR"}]', "unknown keys"),
    ('["urgent"]', "not an object"),
])
def test_a_bad_rule_is_refused_saying_why(text, message):
    with pytest.raises(ValueError, match=message):
        parse_rules(text)


def test_research_hours_wrap_midnight():
    window = parse_hours("20-06")
    assert window == (20, 6)
    assert [h for h in range(24) if in_window(window, h)] == [0, 1, 2, 3, 4, 5, 20, 21, 22, 23]
    assert [h for h in range(24) if in_window(parse_hours("9-17"), h)] == list(range(9, 17))
    assert parse_hours("") is None and in_window(None, 12)
    for bad in ("25-03", "5-5", "evening", "20-06-07"):
        with pytest.raises(ValueError, match="BRAINAI_RESEARCH_HOURS"):
            parse_hours(bad)


def test_a_bad_setting_stops_the_process_naming_the_variable():
    import os
    import subprocess
    import sys

    env = {**os.environ, "BRAINAI_PRIORITY_RULES": '[{"priority": "urgent"}]',
           "DJANGO_SETTINGS_MODULE": "brainai_site.settings"}
    out = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert ImproperlyConfigured.__name__ in out.stderr and "BRAINAI_PRIORITY_RULES" in out.stderr


# --- the lanes ------------------------------------------------------------------------------


def test_lanes_are_served_urgent_routine_research_and_the_detail_pass_last():
    from scans.services.detail import LOW_PRIORITY

    assert LANES == tuple(Priority.values) == ("urgent", "routine", "research")
    assert [lane_step(lane) for lane in LANES] == sorted(LANE_STEP.values())
    assert max(LANE_STEP.values()) < LOW_PRIORITY
    with pytest.raises(KeyError):
        lane_step("soon")


def test_lane_lengths_is_none_with_the_broker_down():
    from tests.broker import broker_at, free_port

    with broker_at(f"redis://127.0.0.1:{free_port()}/0"):
        assert services.lane_lengths() is None


# --- deciding at upload -------------------------------------------------------------------


def test_priority_for_upload_explicit_then_rule_then_routine(settings):
    settings.BRAINAI_PRIORITY_RULES = RULES
    assert lanes.priority_for_upload("research", calling_ae="ER_MRI") == "research"
    assert lanes.priority_for_upload(None, calling_ae="ER_MRI") == "urgent"
    assert lanes.priority_for_upload(description="Trauma head") == "urgent"
    assert lanes.priority_for_upload(calling_ae="RESEARCH1", description="Trial A") == "research"
    assert lanes.priority_for_upload(calling_ae="RESEARCH1", description="Head") == "routine"
    with pytest.raises(ValueError, match="priority must be one of"):
        lanes.priority_for_upload("asap")


def test_an_upload_sends_each_study_to_its_lane(staff_user, published, settings,
                                               django_capture_on_commit_callbacks):
    settings.BRAINAI_PRIORITY_RULES = RULES
    with django_capture_on_commit_callbacks(execute=True):
        routine = b.upload_study(staff_user, 1, seed=1, patient_id="P-1")
        by_rule = b.upload_study(staff_user, 1, seed=2, patient_id="P-2", study_description="Stroke MRI")
        chosen = services.register_upload(staff_user, [b.upload("r.png", b.png_bytes(seed=3))],
                                          {"patient_id": "P-3"}, priority="research").studies[0]

    assert [Study.objects.get(pk=s.pk).priority for s in (routine, by_rule, chosen)] == \
        ["routine", "urgent", "research"]
    assert (ANALYZE_STUDY, (routine.pk,), 3) in published
    assert (ANALYZE_STUDY, (by_rule.pk,), 0) in published
    assert (ANALYZE_STUDY, (chosen.pk,), 6) in published


def test_an_unknown_priority_stores_nothing(staff_user, published):
    with pytest.raises(ValueError):
        services.register_upload(staff_user, [b.upload("r.png", b.png_bytes(seed=4))], {"patient_id": "P-4"},
                                 priority="asap")
    assert not Study.objects.exists() and not published


def test_the_dicom_sender_s_title_picks_the_lane(settings, tmp_path, published, django_capture_on_commit_callbacks):
    from scans.services import dicom_inbox

    settings.BRAINAI_PRIORITY_RULES = RULES
    settings.BRAINAI_DICOM_INBOX = tmp_path
    uid = "1.2.826.0.1.3680043.8.498.777"
    data = b.dicom_bytes(study_uid=uid, patient_id="P-DCM-ER")
    dicom_inbox.receive_instance("ER_MRI", "1.2.826.0.1.3680043.8.498.778", uid, data)
    with django_capture_on_commit_callbacks(execute=True):
        (result,) = dicom_inbox.take_in_quiet_studies(quiet_s=0)
    study = Study.objects.get(pk=result.studies[0].pk)
    assert study.priority == "urgent"
    assert (ANALYZE_STUDY, (study.pk,), 0) in published


def test_research_held_outside_its_hours_is_not_sent_and_the_sweep_sends_it_inside(staff_user, published,
                                                                                    settings):
    settings.BRAINAI_RESEARCH_HOURS = "20-06"
    study = b.upload_study(staff_user, 1, seed=5, patient_id="P-5")
    Study.objects.filter(pk=study.pk).update(priority="research")
    published.clear()

    assert services.requeue_stalled(now=_local(12)) == {"analyze": 0, "explain": 0, "finalize": 0, "held": 1}
    assert not published
    assert lanes.send_analysis(study.pk, "research", now=_local(13)) is False and not published

    assert services.requeue_stalled(now=_local(22))["analyze"] == 1
    assert published == [(ANALYZE_STUDY, (study.pk,), 6)]
    assert lanes.research_open(_local(5)) and not lanes.research_open(_local(6))
    settings.BRAINAI_RESEARCH_HOURS = ""
    assert lanes.research_open(_local(12))


def test_a_worker_holding_research_outside_its_hours_claims_nothing(staff_user, published, settings):
    settings.BRAINAI_RESEARCH_HOURS = "20-06"
    study = b.upload_study(staff_user, 1, seed=6, patient_id="P-6")
    Study.objects.filter(pk=study.pk).update(priority="research")

    assert services.pause_point(study.pk, worker="w1", now=_local(12)) == "held"
    assert study.scans.filter(attempts=0).count() == 1
    event = PipelineEvent.objects.filter(study=study, kind=EventKind.QUEUED).last()
    assert event.detail == {"lane": "research", "reason": "held"} and event.worker == "w1"
    assert services.pause_point(study.pk, now=_local(21)) is None


# --- changing it later --------------------------------------------------------------------


def test_set_priority_records_audit_and_event_and_moves_the_work(staff_user, radiologist, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    study = b.upload_study(staff_user, 1, seed=7, patient_id="P-7")
    reroutes = []
    monkeypatch.setattr(lanes, "reroute", lambda study_id, priority: reroutes.append((study_id, priority)))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.set_priority(study, "urgent", user=radiologist, via="api") is True

    assert Study.objects.get(pk=study.pk).priority == "urgent"
    event = AuditEvent.objects.get(action=AuditAction.CHANGE_PRIORITY)
    assert (event.actor_id, event.study_id, event.via, event.detail) == \
        (radiologist.pk, study.pk, "api", {"from": "routine", "to": "urgent"})
    op = PipelineEvent.objects.get(study=study, kind=EventKind.OPERATOR)
    assert op.detail == {"action": "priority", "from": "routine", "to": "urgent"}
    assert reroutes == [(study.pk, "urgent")]  # the waiting work moves once the change commits


def test_no_change_returns_false_and_records_nothing(staff_user, radiologist):
    study = b.upload_study(staff_user, 1, seed=8, patient_id="P-8")
    assert services.set_priority(study, "routine", user=radiologist) is False
    assert not AuditEvent.objects.filter(action=AuditAction.CHANGE_PRIORITY).exists()
    assert not PipelineEvent.objects.filter(kind=EventKind.OPERATOR).exists()


def test_who_may_change_it(staff_user, radiologist, operator, clinic_admin, outsider):
    study = b.upload_study(staff_user, 1, seed=9, patient_id="P-9")
    for user in (staff_user, outsider):
        with pytest.raises(PermissionDenied, match="radiologists, operators and admins"):
            services.set_priority(study, "urgent", user=user)
    assert services.set_priority(study, "urgent", user=radiologist)
    assert services.set_priority(study, "research", user=operator)
    assert services.set_priority(study, "routine", user=clinic_admin)
    assert AuditEvent.objects.filter(action=AuditAction.CHANGE_PRIORITY).count() == 3


def test_a_signed_study_and_a_bad_value_are_refused(staff_user, radiologist):
    report = b.ready_report(staff_user)
    services.sign_report(report, radiologist)
    with pytest.raises(services.InvalidState, match="signed"):
        services.set_priority(report.study, "urgent", user=radiologist)
    with pytest.raises(ValueError):
        services.set_priority(report.study, "asap", user=radiologist)


def test_with_the_broker_down_the_change_is_kept_and_the_sweep_sends_it(staff_user, radiologist, caplog,
                                                                        django_capture_on_commit_callbacks):
    from tests.broker import broker_at, free_port

    study = b.upload_study(staff_user, 1, seed=11, patient_id="P-11")
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"), caplog.at_level(logging.ERROR):
        with django_capture_on_commit_callbacks(execute=True):
            assert services.set_priority(study, "urgent", user=radiologist)
    assert Study.objects.get(pk=study.pk).priority == "urgent"
    assert "not withdrawn" in caplog.text


# --- where it shows ---------------------------------------------------------------------


def test_api_upload_field_and_study_output(staff_api, published, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post(reverse("api:upload"), {"files": [b.upload("a.png", b.png_bytes(seed=12))],
                                                          "patient_id": "P-12", "priority": "urgent"},
                                  format="multipart")
    assert response.status_code == 202, response.content
    study_id = response.json()["studies"][0]["id"]
    assert (ANALYZE_STUDY, (study_id,), 0) in published
    assert staff_api.get(reverse("api:study-detail", args=[study_id])).json()["priority"] == "urgent"
    assert staff_api.get(reverse("api:study-list")).json()["results"][0]["priority"] == "urgent"
    assert [r["id"] for r in staff_api.get(reverse("api:study-list") + "?priority=urgent").json()["results"]] \
        == [study_id]
    assert staff_api.get(reverse("api:study-list") + "?priority=routine").json()["results"] == []

    bad = staff_api.post(reverse("api:upload"), {"files": [b.upload("b.png", b.png_bytes(seed=13))],
                                                 "patient_id": "P-13", "priority": "asap"}, format="multipart")
    assert bad.status_code == 400 and "priority" in bad.json()
    assert Study.objects.count() == 1


def test_api_priority_endpoint(staff_user, staff_api, radiologist_api, operator, published):
    study = b.upload_study(staff_user, 1, seed=14, patient_id="P-14")
    url = reverse("api:study-priority", args=[study.pk])

    assert staff_api.post(url, {"priority": "urgent"}, format="json").status_code == 403
    answer = radiologist_api.post(url, {"priority": "urgent"}, format="json")
    assert answer.status_code == 200 and answer.json() == {"id": study.pk, "priority": "urgent", "changed": True}
    again = b.token_client(operator).post(url, {"priority": "urgent"}, format="json")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert radiologist_api.post(url, {"priority": "asap"}, format="json").status_code == 400
    assert radiologist_api.post(reverse("api:study-priority", args=[999999]), {"priority": "urgent"},
                                format="json").status_code == 404
    assert Study.objects.get(pk=study.pk).priority == "urgent"


def test_api_priority_on_a_signed_study_is_a_conflict(staff_user, radiologist, radiologist_api):
    report = b.ready_report(staff_user)
    services.sign_report(report, radiologist)
    answer = radiologist_api.post(reverse("api:study-priority", args=[report.study_id]), {"priority": "urgent"},
                                  format="json")
    assert answer.status_code == 409


def test_openapi_documents_the_field_and_the_endpoint(staff_api):
    schema = staff_api.get(reverse("api:schema"), HTTP_ACCEPT="application/json").json()
    assert "/api/v1/studies/{id}/priority/" in schema["paths"]
    upload = schema["components"]["schemas"]
    assert any("priority" in s.get("properties", {}) for name, s in upload.items() if name.startswith("UploadRequest"))


def test_admin_action_changes_the_priority(client, clinic_admin, staff_user, published):
    study = b.upload_study(staff_user, 1, seed=15, patient_id="P-15")
    client.force_login(clinic_admin)
    response = client.post(reverse("admin:scans_study_changelist"),
                           {"action": "priority_urgent", "_selected_action": [study.pk]}, follow=True)
    assert response.status_code == 200
    assert Study.objects.get(pk=study.pk).priority == "urgent"
    assert AuditEvent.objects.get(action=AuditAction.CHANGE_PRIORITY).via == "admin"


def test_worklist_and_upload_page_show_the_lane(client, staff_user, published):
    study = b.upload_study(staff_user, 1, seed=16, patient_id="P-16")
    Study.objects.filter(pk=study.pk).update(priority="urgent")
    client.force_login(staff_user)
    page = client.get(reverse("scans:worklist") + "?status=all").content.decode()
    assert 'class="badge lane-urgent"' in page
    study_page = client.get(reverse("scans:study", args=[study.pk])).content.decode()
    assert 'id="study-priority" class="badge lane-urgent"' in study_page
    upload_page = client.get(reverse("scans:upload")).content.decode()
    assert 'name="priority"' in upload_page and 'value="research"' in upload_page
