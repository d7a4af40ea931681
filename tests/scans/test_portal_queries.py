"""The report page costs the same few queries however many slices the study has (no N+1)."""
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests import builders as b


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_report_page_does_not_query_per_slice(staff_client, staff_user):
    one = b.ready_report(staff_user, 1, mri_class="glioma", patient_id="Q-1")
    four = b.ready_report(staff_user, 4, mri_class="meningioma", patient_id="Q-4")
    for name in ("scans:report", "scans:report-print"):
        small = _queries(staff_client, reverse(name, args=[one.pk]))
        large = _queries(staff_client, reverse(name, args=[four.pk]))
        assert small == large, name
        assert large <= 12, name


def test_the_worklist_does_not_query_per_row(staff_client, staff_user):
    b.ready_report(staff_user, 1, mri_class="glioma", patient_id="W-1")
    few = _queries(staff_client, reverse("scans:worklist"))
    b.ready_report(staff_user, 1, mri_class="notumor", patient_id="W-2")
    b.ready_report(staff_user, 1, mri_class="pituitary", patient_id="W-3")
    assert _queries(staff_client, reverse("scans:worklist")) == few
