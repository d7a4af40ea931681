"""The worklist: AI-positive and low-confidence first, with status, label, patient and date filters."""
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from scans import services
from scans.models import Report
from tests import builders as b


def _rows(client, **params):
    response = client.get(reverse("scans:worklist"), params)
    assert response.status_code == 200
    return [r.pk for r in response.context["reports"]]


def _seed(user):
    """Oldest first: a confident negative, a low-confidence negative, a positive, a guard rejection."""
    return {
        "negative": b.ready_report(user, 1, mri_class="notumor", results=[b.slice_result("notumor", confidence=0.97)],
                                   patient_id="P-NEG", patient_name="Nora Negative"),
        "unsure": b.ready_report(user, 1, mri_class="meningioma", results=[b.slice_result("notumor", confidence=0.55)],
                                 patient_id="P-UNS", patient_name="Una Unsure"),
        "positive": b.ready_report(user, 1, mri_class="glioma", results=[b.slice_result("glioma", confidence=0.96)],
                                   patient_id="P-POS", patient_name="Paul Positive"),
        "rejected": b.ready_report(user, 1, mri_class="pituitary", patient_id="P-REJ", patient_name="Rex Rejected",
                                   results=[b.slice_result("not_brain_mri", confidence=0.9, in_distribution=False)]),
    }


def test_ai_positive_then_low_confidence_come_first(staff_client, staff_user):
    r = _seed(staff_user)
    rows = _rows(staff_client)
    assert rows[0] == r["positive"].pk
    assert set(rows[1:3]) == {r["unsure"].pk, r["rejected"].pk}
    assert rows[3] == r["negative"].pk


def test_it_shows_status_label_and_confidence(staff_client, staff_user):
    _seed(staff_user)
    html = staff_client.get(reverse("scans:worklist")).content.decode()
    assert "Awaiting review" in html and "Glioma" in html and "96.0%" in html
    assert "AI-positive" in html and "Low confidence" in html and "Not a brain MRI" in html


def test_it_filters_by_label_and_patient(staff_client, staff_user):
    r = _seed(staff_user)
    assert _rows(staff_client, label="glioma") == [r["positive"].pk]
    assert _rows(staff_client, patient="una") == [r["unsure"].pk]
    assert _rows(staff_client, patient="P-NEG") == [r["negative"].pk]


def test_signed_reports_leave_the_default_list_but_can_be_filtered_for(staff_client, staff_user, radiologist):
    r = _seed(staff_user)
    services.sign_report(r["positive"], radiologist)
    assert r["positive"].pk not in _rows(staff_client)
    assert _rows(staff_client, status="signed") == [r["positive"].pk]
    assert len(_rows(staff_client, status="all")) == 4


def test_it_filters_by_date(staff_client, staff_user):
    r = _seed(staff_user)
    Report.objects.filter(pk=r["negative"].pk).update(created_at=timezone.now() - timedelta(days=10))
    today = timezone.localdate()
    assert r["negative"].pk not in _rows(staff_client, date_from=today.isoformat())
    assert _rows(staff_client, date_to=(today - timedelta(days=5)).isoformat()) == [r["negative"].pk]


def test_an_empty_worklist_says_so(staff_client):
    assert b"Nothing to read" in staff_client.get(reverse("scans:worklist")).content
