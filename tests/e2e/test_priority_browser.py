"""The portal's priority select, in a real browser (Debian's Chromium through Playwright):
an upload marked urgent lands in the urgent lane of a real Redis, and the study page and
the worklist show its lane. No worker: the private Redis (``fault_stack``) only holds the
message, so what is checked is where it waits."""
from __future__ import annotations

import pytest

from scans.models import Study
from scans.services.queue import lane_lengths
from tests import builders as b
from tests.e2e.faults import fault_stack  # noqa: F401  (fixture)
from tests.e2e.test_browser import _sign_in, browser_page  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]


def test_an_upload_marked_urgent_in_the_portal_waits_in_the_urgent_lane(fault_stack, live_server, page_user,
                                                                       browser_page):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    _sign_in(page, base, "rad", "pw-rad")
    page.goto(base + "/upload/")
    expect(page.locator("#id_priority option")).to_have_count(4)  # automatic + the three lanes
    page.set_input_files("#pick-files", [{"name": "slice.jpg", "mimeType": "image/jpeg",
                                          "buffer": b.brain_jpegs(1, "pituitary", 40)[0]}])
    page.fill("#id_patient_id", "E2E-LANE-1")
    page.select_option("#id_priority", "urgent")
    page.click("#upload-submit")
    expect(page.locator("#upload-summary")).to_be_visible(timeout=60_000)
    expect(page.locator("#accepted-count")).to_have_text("1")

    study = Study.objects.get(patient__patient_id="E2E-LANE-1")
    assert study.priority == "urgent"
    assert lane_lengths() == {"urgent": 1, "routine": 0, "research": 0, "detail": 0}

    page.click("#created-studies a")
    expect(page.locator("#study-priority")).to_have_text("Urgent")
    page.goto(base + "/?status=all")
    expect(page.locator("#worklist .lane-urgent")).to_have_count(1)
    assert page.errors == [], f"errors in the page: {page.errors}"
