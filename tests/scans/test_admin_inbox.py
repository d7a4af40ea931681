"""The DICOM inbox in the admin: read-only rows (received at, calling AE, UIDs, taken in,
duplicates, the upload), filters, and a per-study summary of waiting vs taken-in instances.

The rows come from the real intake (scans.services.dicom_inbox.receive_instance and
take_in_study), not from hand-made rows.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scans.models import AuditEvent, DicomInstance
from scans.selectors import dicom_inbox_studies
from scans.services import dicom_inbox
from tests import builders as b

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("sent")]

TAKEN = "1.2.826.0.1.3680043.8.498.4401"
WAITING = "1.2.826.0.1.3680043.8.498.4402"


@pytest.fixture
def inbox(settings, tmp_path):
    """Study TAKEN: 2 instances from MR1, taken in. Study WAITING: 2 from MR1 and 1 from PACS2,
    one of MR1's received twice; waiting."""
    settings.BRAINAI_DICOM_INBOX = tmp_path / "inbox"
    settings.BRAINAI_DICOM_MIN_FREE_MB = 0
    for study, senders in ((TAKEN, ["MR1", "MR1"]), (WAITING, ["MR1", "MR1", "PACS2"])):
        for i, ae in enumerate(senders, start=1):
            data = b.dicom_bytes(patient_id="P-INBOX", patient_name="Inbox^Patient", study_uid=study,
                                 series_uid=f"{study}.1", sop_uid=f"{study}.1.{i}", instance_number=i, seed=i)
            assert dicom_inbox.receive_instance(ae, f"{study}.1.{i}", study, data) == dicom_inbox.SUCCESS
    again = b.dicom_bytes(study_uid=WAITING, series_uid=f"{WAITING}.1", sop_uid=f"{WAITING}.1.1", seed=1)
    assert dicom_inbox.receive_instance("MR1", f"{WAITING}.1.1", WAITING, again) == dicom_inbox.SUCCESS
    assert dicom_inbox.take_in_study(TAKEN) is not None
    return settings


@pytest.fixture
def admin_client_(clinic_admin):
    client = Client()
    client.force_login(clinic_admin)
    return client


def _changelist(client, **params):
    response = client.get(reverse("admin:scans_dicominstance_changelist"), params)
    assert response.status_code == 200
    return response


def test_the_list_shows_each_instance_with_its_sender_state_and_upload(admin_client_, inbox):
    page = _changelist(admin_client_)
    rows = page.context["cl"].result_list
    assert len(rows) == 5
    html = page.content.decode()
    upload_id = DicomInstance.objects.get(sop_instance_uid=f"{TAKEN}.1.1").upload_id
    assert reverse("admin:scans_upload_change", args=[upload_id]) in html
    assert f"{WAITING}.1.3" in html and "PACS2" in html
    assert "Inbox^Patient" not in html and "P-INBOX" not in html  # UIDs and senders, no patient data


@pytest.mark.parametrize("params, expected", [
    ({"taken_in": "no"}, {f"{WAITING}.1.1", f"{WAITING}.1.2", f"{WAITING}.1.3"}),
    ({"taken_in": "yes"}, {f"{TAKEN}.1.1", f"{TAKEN}.1.2"}),
    ({"duplicated": "yes"}, {f"{WAITING}.1.1"}),
    ({"calling_ae": "PACS2"}, {f"{WAITING}.1.3"}),
    ({"q": TAKEN}, {f"{TAKEN}.1.1", f"{TAKEN}.1.2"}),
])
def test_filters_and_search(admin_client_, inbox, params, expected):
    rows = _changelist(admin_client_, **params).context["cl"].result_list
    assert {r.sop_instance_uid for r in rows} == expected


def test_the_summary_counts_waiting_and_taken_in_per_study(admin_client_, inbox):
    page = _changelist(admin_client_)
    by_uid = {s.study_instance_uid: s for s in page.context["inbox_studies"]}
    taken, waiting = by_uid[TAKEN], by_uid[WAITING]
    assert (taken.waiting, taken.taken_in, taken.duplicates, taken.senders, taken.due_at) == (0, 2, 0, ("MR1",), None)
    assert (waiting.waiting, waiting.taken_in, waiting.duplicates, waiting.senders) == (3, 0, 1, ("MR1", "PACS2"))
    html = page.content.decode()
    assert 'id="inbox-studies"' in html and '<td class="inbox-waiting">3</td>' in html


def test_the_summary_due_time_follows_the_grouping(inbox):
    old = timezone.now() - timedelta(minutes=30)
    DicomInstance.objects.filter(study_instance_uid=WAITING, calling_ae="PACS2").update(received_at=old)
    newest_mr1 = DicomInstance.objects.filter(study_instance_uid=WAITING, calling_ae="MR1").latest("received_at")
    quiet = timedelta(seconds=inbox.BRAINAI_DICOM_STUDY_QUIET_S)

    inbox.BRAINAI_DICOM_GROUP_BY = "study"
    (study,) = [s for s in dicom_inbox_studies() if s.study_instance_uid == WAITING]
    assert study.due_at == newest_mr1.received_at + quiet  # the whole study waits for its newest instance

    inbox.BRAINAI_DICOM_GROUP_BY = "ae_study"
    (study,) = [s for s in dicom_inbox_studies() if s.study_instance_uid == WAITING]
    assert study.due_at == old + quiet  # PACS2's part is due first


def test_nothing_can_be_added_changed_or_deleted(admin_client_, inbox):
    row = DicomInstance.objects.get(sop_instance_uid=f"{WAITING}.1.1")
    assert admin_client_.get(reverse("admin:scans_dicominstance_add")).status_code == 403
    page = admin_client_.get(reverse("admin:scans_dicominstance_change", args=[row.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert admin_client_.post(reverse("admin:scans_dicominstance_change", args=[row.pk]),
                              {"calling_ae": "EVIL"}).status_code == 403
    assert admin_client_.post(reverse("admin:scans_dicominstance_delete", args=[row.pk]),
                              {"post": "yes"}).status_code == 403
    assert DicomInstance.objects.get(pk=row.pk).calling_ae == "MR1"
    assert "delete_selected" not in _changelist(admin_client_).content.decode()


def test_viewing_the_inbox_is_not_an_audited_read(admin_client_, inbox):
    before = AuditEvent.objects.count()
    row = DicomInstance.objects.first()
    _changelist(admin_client_)
    admin_client_.get(reverse("admin:scans_dicominstance_change", args=[row.pk]))
    assert AuditEvent.objects.count() == before  # UIDs and counts only: see docs/integration.md


def test_only_admins_see_it(staff_user, inbox):
    client = Client()
    client.force_login(staff_user)
    assert client.get(reverse("admin:scans_dicominstance_changelist")).status_code == 302
