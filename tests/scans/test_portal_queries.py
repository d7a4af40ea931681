"""The report page costs the same few queries however many slices the study has (no N+1)."""
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.scans.test_portal_support import seed_report, staff_client  # noqa: F401 - fixtures


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_report_page_does_not_query_per_slice(staff_client, staff_user):
    one = seed_report(staff_user, n=1, patient_id="Q-1")
    four = seed_report(staff_user, n=4, cls="meningioma", patient_id="Q-4")
    for name in ("scans:report", "scans:report-print"):
        small = _queries(staff_client, reverse(name, args=[one.pk]))
        large = _queries(staff_client, reverse(name, args=[four.pk]))
        assert small == large, name
        assert large <= 12, name


def test_the_worklist_does_not_query_per_row(staff_client, staff_user):
    seed_report(staff_user, n=1, patient_id="W-1")
    few = _queries(staff_client, reverse("scans:worklist"))
    seed_report(staff_user, n=1, cls="notumor", patient_id="W-2")
    seed_report(staff_user, n=1, cls="pituitary", patient_id="W-3")
    assert _queries(staff_client, reverse("scans:worklist")) == few
