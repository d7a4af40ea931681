"""A real browser (Debian's Chromium via Playwright) on the reviewer's verdict and the analytics page
(issue #20, part 5): a radiologist records a disagreement at sign-off, is told when the
correct label is missing, signs, and finds the verdict counted on /analytics/."""
from __future__ import annotations

import pytest

from scans.models import AuditAction, AuditEvent, Report, ReportStatus
from tests import builders as b
from tests.e2e.test_browser import _sign_in, browser_page  # noqa: F401 - the fixture is used by name

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("sent")]


def test_a_radiologist_signs_a_disagreement_and_sees_it_in_the_analytics(transactional_db, live_server, page_user,
                                                                         browser_page):  # noqa: F811
    from playwright.sync_api import expect

    report = b.ready_report(page_user, 1, mri_class="glioma", patient_name="Verdict Browser Patient")
    assert report.label == "glioma"
    page, base = browser_page, live_server.url
    _sign_in(page, base, "rad", "pw-rad")
    page.goto(f"{base}/reports/{report.pk}/")

    # "Disagrees" without the correct label: the form says so and nothing is signed.
    page.fill("#id_findings", "Extra-axial, dural tail.")
    page.check("input[name=verdict][value=disagree]")
    page.click("#sign-button")
    expect(page.locator("#verdict")).to_contain_text("give the correct label when you disagree with the AI")
    assert Report.objects.get(pk=report.pk).status == ReportStatus.AWAITING_REVIEW

    page.check("input[name=verdict][value=disagree]")
    page.select_option("#id_verdict_label", "meningioma")
    page.click("#sign-button")
    expect(page.locator("#signature")).to_contain_text("Signed by")
    expect(page.locator("#verdict-text")).to_have_text("Disagrees (correct label given): Meningioma")
    signed = Report.objects.get(pk=report.pk)
    assert (signed.verdict, signed.verdict_label) == ("disagree", "meningioma")
    assert signed.snapshot["review"]["verdict_label"] == "meningioma"

    # The analytics page, from the nav: the disagreement in the confusion, no patient on it.
    page.click("nav >> text=Analytics")
    expect(page.locator("#analytics-total")).to_contain_text("1 signed report")
    row = page.locator(".analytics-confusion tr[data-label=glioma] td")
    assert row.all_inner_texts() == ["0", "1", "0", "0", "0", "1"]  # 4 classes, not assessable, total
    expect(page.locator("#model-1")).to_contain_text("agreement 0.0%")
    assert "Verdict Browser Patient" not in page.content()
    # The one 400 is the refused sign-off above (the form page with its error), as intended.
    assert page.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"], \
        f"errors in the page: {page.errors}"
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_ANALYTICS, actor=page_user).count() == 1
