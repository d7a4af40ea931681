"""A real browser against a live server, a real Celery worker and a real Redis.

Debian's Chromium (/usr/bin/chromium), driven with Playwright's Python package; Playwright's
own browser download is never used. A radiologist signs in, uploads an MRI slice (the
shared dataset's, else a phantom: tests/builders.py), watches the study's progress, opens
the report when the worker has analysed and explained it, signs it, and a screenshot of
the signed report is saved to docs/screenshots/report.png (and a copy in the test's tmp dir).
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from scans.models import AuditAction, AuditEvent, Report, ReportStatus
from tests import builders as b

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT = ROOT / "docs" / "screenshots" / "report.png"
ANALYSIS_TIMEOUT_MS = 300_000  # model load + one slice + the explanation, on 2 busy cores


def _chromium() -> str:
    """Debian's chromium; installed with scripts/install-test-tools.sh when missing, else the test fails."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "install-test-tools.sh")], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=900)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is absent and scripts/install-test-tools.sh could not install it")
    return CHROMIUM


@pytest.fixture
def browser_page(live_server, monkeypatch):
    from playwright import sync_api  # requirements-dev.txt
    executable = _chromium()
    # Playwright's sync API runs an event loop in this thread; the test's own ORM checks
    # are still plain synchronous code (Django's documented escape hatch for this case).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
        page.set_default_timeout(20_000)
        yield page
        browser.close()


def _sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/")
    assert "/accounts/login/" in page.url, "an anonymous visitor must land on the login page"
    assert "Not for diagnostic use" in page.content()
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def test_a_radiologist_uploads_a_scan_and_signs_its_report(pipeline, live_server, page_user, browser_page, tmp_path):
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    mri = b.brain_jpegs(1)[0]
    _sign_in(page, base, "rad", "pw-rad")

    # Upload: one MRI slice and one file that is not an image, chosen together.
    page.goto(base + "/upload/")
    page.set_input_files("#pick-files", [
        {"name": "glioma-0.jpg", "mimeType": "image/jpeg", "buffer": mri},
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not an image"},
    ])
    expect(page.locator("#file-summary")).to_contain_text("2 files selected")
    page.fill("#id_patient_id", "E2E-0001")
    page.fill("#id_patient_name", "Browser Test Patient")
    page.fill("#id_study_description", "MRI brain (browser test)")
    page.click("#upload-submit")
    expect(page.locator("#upload-summary")).to_be_visible(timeout=60_000)
    expect(page.locator("#accepted-count")).to_have_text("1")
    expect(page.locator("#rejected-count")).to_have_text("1")
    expect(page.locator("#rejected-files")).to_contain_text("notes.txt")
    assert page.eval_on_selector("#upload-progress", "p => p.value === p.max"), "the progress bar did not finish"

    # The study page polls its progress until the worker is done, then offers the report.
    page.click("#created-studies a")
    expect(page.locator("#progress-count")).to_contain_text("of 1 analysed")
    expect(page.locator("#report-link")).to_be_visible(timeout=ANALYSIS_TIMEOUT_MS)
    assert page.locator("#study-failure").is_hidden(), \
        f"the analysis failed: {page.locator('#study-failure').inner_text()}\n{pipeline.log()[-3000:]}"
    expect(page.locator("#progress-count")).to_contain_text("1 of 1 analysed")
    page.goto(base + page.locator("#report-link").get_attribute("href"))

    # The report: the slice with its maps, the AI finding, the explanation marked as AI output.
    expect(page.locator("#report-status")).to_have_text("Awaiting review")
    # Saliency comes from the low-priority detail pass, after the finding: until it is
    # stored the page says "Saliency not computed"; reload until the map is there.
    deadline = time.monotonic() + ANALYSIS_TIMEOUT_MS / 1000
    while page.locator(".slice-images img").count() < 3 and time.monotonic() < deadline:
        expect(page.locator(".slice-images")).to_contain_text("Saliency not computed")
        page.wait_for_timeout(500)
        page.reload()
    page.wait_for_load_state("networkidle")
    sizes = page.eval_on_selector_all(".slice-images img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(sizes) == 3 and all(sizes), f"original, Grad-CAM and saliency must all load: {sizes}"
    expect(page.locator("#explanation")).to_contain_text("AI-generated, requires review")
    assert page.locator("#explanation .explanation").inner_text().strip()

    # Sign-off.
    page.fill("#id_findings", "Browser test: enhancing lesion, see Grad-CAM.")
    page.fill("#id_impression", "Browser test impression.")
    page.click("#sign-button")
    expect(page.locator("#signature")).to_contain_text("Signed by")
    expect(page.locator("#report-status")).to_have_text("Signed")
    assert page.locator("#review-form").count() == 0 and page.locator("textarea:visible").count() == 0, \
        "a signed report must be read-only"
    expect(page.locator("#amend-form")).to_be_hidden()  # amending is a deliberate second step
    assert "Not for diagnostic use" in page.content()

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    shutil.copyfile(tmp_path / "report.png", SCREENSHOT)
    assert page.errors == [], f"errors in the page: {page.errors}"

    report = Report.objects.current().get(study__patient__patient_id="E2E-0001")
    assert report.status == ReportStatus.SIGNED and report.signed_by == page_user
    assert report.findings.startswith("Browser test")
    assert AuditEvent.objects.filter(action=AuditAction.VIEW_REPORT, report=report, actor=page_user).exists()
    assert AuditEvent.objects.filter(action=AuditAction.SIGN_REPORT, report=report, actor=page_user).exists()


def test_the_drop_zone_takes_dropped_files_and_picked_folders(transactional_db, live_server, page_user,
                                                             browser_page, tmp_path):
    """Nothing is uploaded here: only what the page collects from a drop and a folder pick."""
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    _sign_in(page, base, "rad", "pw-rad")
    page.goto(base + "/upload/")
    jpeg = base64.b64encode(b.brain_jpegs(1)[0]).decode()
    page.evaluate("""jpeg => {
        const bytes = Uint8Array.from(atob(jpeg), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], "slice.jpg", {type: "image/jpeg"}));
        dt.items.add(new File(["x"], "notes.txt", {type: "text/plain"}));
        const zone = document.getElementById("dropzone");
        for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
        }
    }""", jpeg)
    expect(page.locator("#file-summary")).to_contain_text("2 files selected")
    expect(page.locator("#file-list")).to_contain_text("slice.jpg")
    expect(page.locator("#upload-submit")).to_be_enabled()

    folder = tmp_path / "study-folder" / "series-1"
    folder.mkdir(parents=True)
    (folder / "IM0001.dcm").write_bytes(b"DICM-not-really")
    (folder / "IM0002.dcm").write_bytes(b"DICM-not-really-2")
    page.set_input_files("#pick-folder", str(tmp_path / "study-folder"))
    expect(page.locator("#file-summary")).to_contain_text("4 files selected")
    expect(page.locator("#file-list")).to_contain_text("series-1/IM0002.dcm")
    page.click("#upload-clear")
    expect(page.locator("#file-summary")).to_have_text("No files selected yet.")
    assert page.errors == [], f"errors in the page: {page.errors}"
