"""The accepted part of the bad-input corpus through a real worker, then its pages in a real browser.

Every case of tests/bad_input.py that holds files the service must take (compressed and
bare DICOM, signed with rescale, MONOCHROME1, multi-frame, the nested and zip-slip ZIPs'
good members, the hostile names) is posted to the upload API; a real Celery worker on a
real Redis analyses and explains each study. Then a radiologist opens the worklist, every
study page, report, print view and the admin lists in Chromium: the hostile names show as
text, no script of theirs runs (each would set ``window.__pwned``), the page logs no
error, and the Content-Security-Policy header is there and enforced (a script injected
into the page after load is blocked).
"""
from __future__ import annotations

import time

import pytest

from scans.models import Report, ReportStatus, Scan, ScanStatus, Study
from tests import bad_input as corpus
from tests import builders as b
from tests.e2e.test_browser import _sign_in, browser_page  # noqa: F401  (a fixture, used by name)

pytestmark = [pytest.mark.e2e]

ANALYSIS_TIMEOUT_S = 420  # model load + 12 slices + explanations + the detail pass, on 2 busy cores
SHOWN_AS_TEXT = ("<script>window.__pwned=1</script>Zoë", corpus.XSS_DESCRIPTION, "Ærøskøbing José",
                 corpus.XSS_DICOM_DESCRIPTION)


def _all_done() -> bool:
    reports = Report.objects.current()
    return (Study.objects.exists() and not Scan.objects.filter(status=ScanStatus.PENDING).exists()
            and reports.count() == Study.objects.count()
            and not reports.filter(status=ReportStatus.PROCESSING).exists())


def test_the_accepted_corpus_is_analysed_and_its_pages_run_no_hostile_script(pipeline, live_server, page_user,
                                                                           browser_page, wait_for):
    api = b.token_client(page_user)
    for case in corpus.accepted_cases():
        files = [b.upload(name, data) for name, data in case.files]
        response = api.post("/api/v1/uploads/", {"files": files, **case.fields}, format="multipart")
        assert response.status_code == 202 and response.json()["accepted"] >= 1, (case.key, response.content)
    expected_scans = sum(c.scans for c in corpus.accepted_cases())
    assert Scan.objects.count() == expected_scans

    t0 = time.monotonic()
    wait_for(_all_done, ANALYSIS_TIMEOUT_S, "every study of the corpus analysed and explained")
    counts = {s: Scan.objects.filter(status=s).count() for s in ScanStatus.values}
    print(f"\n{Study.objects.count()} studies, {expected_scans} scans: {counts}, "
          f"{time.monotonic() - t0:.0f} s after the last upload")
    failed = list(Scan.objects.filter(status=ScanStatus.FAILED).values_list("original_name", "error"))
    assert failed == [], f"the worker could not analyse: {failed}\n{pipeline.log()[-3000:]}"
    assert set(Report.objects.current().values_list("status", flat=True)) == {ReportStatus.AWAITING_REVIEW}

    page, base = browser_page, live_server.url
    missing = []  # every failed load but the browser's own /favicon.ico guess (the site has no icon)
    page.on("response", lambda r: r.status >= 400 and missing.append(f"{r.status} {r.url}"))
    page.on("pageerror", lambda e: missing.append(f"uncaught {e}"))
    page.on("console", lambda m: m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            and missing.append(f"{m.text} {m.location}"))
    page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation', "
                         "e => window.__csp.push(e.violatedDirective));")
    _sign_in(page, base, "rad", "pw-rad")
    urls = ["/", "/admin/scans/patient/", "/admin/scans/study/", "/admin/scans/scan/"]
    for report in Report.objects.current():
        urls += [f"/studies/{report.study_id}/", f"/reports/{report.pk}/", f"/reports/{report.pk}/print/"]
    seen_text = ""
    for url in urls:
        response = page.goto(base + url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers.get("content-security-policy", ""), url
        page.wait_for_load_state("networkidle")
        assert page.evaluate("typeof window.__pwned") == "undefined", f"a hostile script ran on {url}"
        assert page.evaluate("window.__csp") == [], f"something tried to run against the CSP on {url}"
        seen_text += page.inner_text("body")
        assert missing == [], f"errors on {url}: {missing}"
    for text in SHOWN_AS_TEXT:
        assert text in seen_text, f"{text!r} is not shown as text anywhere"

    # The policy is enforced, not only sent: an inline script added after load is blocked.
    page.evaluate("() => { const s = document.createElement('script');"
                  " s.textContent = 'window.__pwned = 99'; document.body.appendChild(s); }")
    page.wait_for_timeout(200)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert "script-src-elem" in page.evaluate("window.__csp") or "script-src" in page.evaluate("window.__csp")
