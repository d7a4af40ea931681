"""The report page's map viewer in a real browser (Debian's Chromium through Playwright).

The report is reached through the real services with the PNGs the worker stores (the
Grad-CAM heatmap and overlay of ml.explain.overlay, the saliency map on black in the hot
colormap) for a non-square slice. The test moves the opacity slider with the keyboard and
reads the heatmap layer's computed opacity; it checks that the composite at 0.4 looks like
the stored overlay (so the colour bar is cropped and the map sits on the image); it switches
the saliency map to the blended view and compares the canvas, pixel by pixel, with the seed's
blend computed in Python (ml.explain.overlay.blend, hot, alpha 0.7 by value); and it checks
that none of this asked the server for an image. A screenshot of the slice goes to
docs/screenshots/report-maps.png.
"""
from __future__ import annotations

import base64
import dataclasses
import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from ml.explain.overlay import blend, render_heatmap_png, render_overlay_png
from ml.io.read import read_frames
from scans import services
from scans.models import Report
from tests import builders as b
from tests.e2e.test_browser import _sign_in, browser_page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "screenshots" / "report-maps.png"
FAILS = {"metric": "deletion_auc", "map_auc": 0.68, "random_auc": 0.64, "gain": -0.04, "score": 0.0,
         "beats_random": False, "fractions": [0.05, 0.15, 0.3]}


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32)


def _report_with_maps(user) -> tuple[Report, np.ndarray, np.ndarray, bytes]:
    """A non-square slice (256 x 320) analysed and detailed as the worker stores it.

    Returns the report, the image and the saliency map (both (H, W) in [0, 1]) and the stored overlay PNG.
    """
    wide = b.phantom(320, seed=3)[32:288, :]                       # 256 rows, 320 columns
    result = services.register_upload(user, [b.upload("wide.png", _png(wide))], {"patient_id": "P-MAPS-E2E"})
    assert result.accepted == 1, result.rejected
    study = result.studies[0]
    scan = services.claim_batch(study.pk, 10, 99)[0]
    with scan.source.open("rb") as fh:
        image = np.asarray(read_frames(fh.read())[0].pixels, np.float32)
    assert image.shape == (256, 320)
    heat = b.hot_spot(*image.shape)
    saliency = np.clip((heat - 0.4) / 0.6, 0, 1).astype(np.float32)  # thresholded: zero outside the spot
    overlay = render_overlay_png(image, heat)
    first = dataclasses.replace(b.slice_result("glioma", confidence=0.93), faithfulness=None)  # no check yet
    services.record_analyses([services.ScanResult(scan.pk, first, render_heatmap_png(heat), overlay)],
                             model_name="test-model", model_version="0123456789ab")
    report = b.explain_and_finalize(services.complete_analysis(study.pk))
    assert services.record_detail(scan.pk, model_version="0123456789ab",
                                  saliency_png=render_heatmap_png(saliency, cmap="hot"), faithfulness=FAILS)
    return report, image, saliency, overlay


def _opacities(page) -> list[float]:
    return [float(v) for v in page.eval_on_selector_all(
        "[data-heat-layer]", "layers => layers.map(l => getComputedStyle(l).opacity)")]


def test_the_slider_and_the_blended_view_work_in_the_browser_without_asking_for_images(
        transactional_db, sent, live_server, page_user, browser_page, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    report, image, saliency, overlay = _report_with_maps(page_user)
    _sign_in(page, base, "rad", "pw-rad")
    page.goto(base + reverse("scans:report", args=[report.pk]))
    page.wait_for_load_state("networkidle")
    loaded = page.eval_on_selector_all(".slice-images img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
    assert len(loaded) == 3 and all(loaded), f"original, Grad-CAM and saliency must load: {loaded}"
    expect(page.locator("#heatmap-warning")).to_contain_text("This heatmap may not show what drove the result")

    requests = []
    page.on("request", lambda r: requests.append((r.resource_type, r.url)))

    # The slider: 0.4 to start (the stored overlay's blend), then moved with the keyboard.
    slider = page.locator("#heat-opacity")
    expect(slider).to_be_visible()
    assert _opacities(page) == [pytest.approx(0.4)]
    slider.focus()
    for _ in range(8):
        page.keyboard.press("ArrowRight")                                 # step 0.05
    assert _opacities(page) == [pytest.approx(0.8)]
    expect(page.locator("#heat-opacity-value")).to_have_text("0.80")
    page.keyboard.press("Home")
    assert _opacities(page) == [pytest.approx(0.0)]
    page.keyboard.press("End")
    assert _opacities(page) == [pytest.approx(1.0)]

    # Back at 0.4 the composite is the stored overlay (map part, without its colour bar).
    page.keyboard.press("Home")
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    assert _opacities(page) == [pytest.approx(0.4)]
    shot = _decode(page.locator("[data-heat-stack]").screenshot(path=str(tmp_path / "stack.png")))
    assert abs(shot.shape[1] / shot.shape[0] - 320 / 256) < 0.02, shot.shape
    h, w = shot.shape[:2]

    def small(a):  # same size as the shot, its rounded corners cut off, then coarse
        a = cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA)[6:-6, 6:-6]
        return cv2.resize(a, (40, 32), interpolation=cv2.INTER_AREA)

    stored = _decode(overlay)[:, :image.shape[1]]                       # the map part, no colour bar
    diff = np.abs(small(shot) - small(stored))
    assert diff.mean() < 3 and diff.max() < 40, (diff.mean(), diff.max())  # edges resample differently
    # The whole PNG squeezed in (the colour bar not cropped) would not match.
    squeezed = np.abs(small(_decode(overlay)) - small(stored))
    assert squeezed.mean() > 4 * diff.mean(), (squeezed.mean(), diff.mean())

    # The saliency map: on black, then blended with the image as the seed drew it.
    canvas = page.locator("[data-sal-blend]")
    expect(canvas).to_be_hidden()
    page.click("#sal-blend")
    expect(canvas).to_be_visible()
    expect(page.locator("[data-sal-caption]")).to_have_text("(blended with the image)")
    assert page.get_attribute("#sal-blend", "aria-pressed") == "true"
    data = page.eval_on_selector("[data-sal-blend]", "c => c.toDataURL('image/png')")
    drawn = _decode(base64.b64decode(data.split(",", 1)[1]))
    expected = blend(image, saliency, cmap="hot", alpha=0.7, alpha_by_value=True).astype(np.float32)
    assert drawn.shape == expected.shape, (drawn.shape, expected.shape)
    err = np.abs(drawn - expected)
    assert err.max() <= 3, f"the blend differs by up to {err.max()} grey levels"
    spot = saliency > 0.5
    assert np.abs(drawn[spot] - image[spot, None] * 255).mean() > 40  # the map is really there
    page.click("#sal-black")
    expect(canvas).to_be_hidden()
    expect(page.locator("[data-sal-caption]")).to_have_text("(on black)")

    images = [url for kind, url in requests if kind == "image"]
    assert images == [], f"the viewer asked the server for images: {images}"
    assert not [url for kind, url in requests if url.startswith(base)], requests

    page.click("#sal-blend")
    slider.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")                                     # 0.5 for the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.locator("#slices-h").scroll_into_view_if_needed()
    page.locator("section[aria-labelledby=slices-h]").screenshot(path=str(tmp_path / "report-maps.png"))
    shutil.copyfile(tmp_path / "report-maps.png", SCREENSHOT)
    page.screenshot(path=str(tmp_path / "report-page.png"), full_page=True)
    assert page.errors == [], f"errors in the page: {page.errors}"


def test_past_the_first_slices_the_preview_comes_under_the_heatmap_once_it_is_scrolled_to(
        transactional_db, sent, live_server, page_user, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page, base = browser_page, live_server.url
    report = b.ready_report(page_user, 5, patient_id="P-MAPS-LAZY")
    _sign_in(page, base, "rad", "pw-rad")
    page.goto(base + reverse("scans:report", args=[report.pk]))
    page.wait_for_load_state("networkidle")
    last = page.locator("[data-heat-stack]").nth(4)
    slider = page.locator("#heat-opacity")
    slider.focus()
    page.keyboard.press("End")
    last.scroll_into_view_if_needed()
    expect(last.locator("[data-heat-layer]")).to_have_js_property("complete", True)
    page.wait_for_function("s => getComputedStyle(s).backgroundImage.includes('/previews/')", arg=last.element_handle())
    preview = page.locator("img[data-preview]").nth(4).get_attribute("src")
    assert preview in last.evaluate("s => getComputedStyle(s).backgroundImage")
    assert float(last.locator("[data-heat-layer]").evaluate("l => getComputedStyle(l).opacity")) == 1.0
    assert page.errors == [], f"errors in the page: {page.errors}"
