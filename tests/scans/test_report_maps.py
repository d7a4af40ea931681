"""What the reviewer sees of the heatmap's faithfulness check and the input guard's verdict
(issue #20, part 6): on the report page, the print view and the API, live and signed.

Reports are reached through the real services (tests.builders); the stored check is the
shape ml.explain.faithfulness.DeletionVsRandom writes, the guard's the shape
ml.guard.input_guard.GuardVerdict.as_dict writes.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse

from ml.explain.overlay import colormap_lut
from scans import services, slice_facts
from scans.models import Analysis, Report
from tests import builders as b

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
WARNING = "This heatmap may not show what drove the result"
PASSES = {"metric": "deletion_auc", "map_auc": 0.21, "random_auc": 0.83, "gain": 0.62, "score": 0.747,
          "beats_random": True, "fractions": [0.05, 0.15, 0.3]}
FAILS = {"metric": "deletion_auc", "map_auc": 0.68, "random_auc": 0.64, "gain": -0.04, "score": 0.0,
         "beats_random": False, "fractions": [0.05, 0.15, 0.3]}
REJECTED = {"in_distribution": False, "score": 3.4217,
            "components": {"features": 3.4217, "contrast": 0.2, "dark_fraction": 1.7, "edge_energy": 0.4,
                           "colourfulness": 0.1},
            "reasons": ["no dark background around the head, as brain MRI slices have",
                        "the model's features are unlike any brain MRI it was trained on"]}


def _result(label="glioma", *, faithfulness=PASSES, confidence=0.9, guard=None, **kw):
    r = b.slice_result(label, confidence=confidence, **kw)
    changes = {"faithfulness": faithfulness}
    if guard is not None:
        changes["guard"] = guard
    return dataclasses.replace(r, **changes)


def _report(user, *results, seed: int = 0) -> Report:
    """A report awaiting review whose slices carry ``results`` (in scan order); another
    ``seed`` for a second study in the same test (other images, another patient)."""
    return b.ready_report(user, len(results), results=list(results), seed=seed * 10, patient_id=f"P-MAPS-{seed}")


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(user, report, name="scans:report") -> str:
    response = _client(user).get(reverse(name, args=[report.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _article(html: str, scan_id: int) -> str:
    match = re.search(rf'<article class="slice" id="slice-{scan_id}".*?</article>', html, re.S)
    assert match, f"no slice {scan_id} on the page"
    return match.group(0)


def _scans(report):
    return list(report.study.scans.order_by("id"))


# --- the report page ------------------------------------------------------------------------


def test_each_slice_shows_its_check_with_the_numbers_and_the_key_slice_its_own_line(staff_user):
    report = _report(staff_user, _result("glioma", confidence=0.95), _result("notumor", faithfulness=FAILS))
    html = _page(staff_user, report)
    first, second = _scans(report)
    assert report.key_scan_id == first.pk
    passing = "Heatmap faithfulness: 0.75 · beats random maps (deletion AUC 0.21 vs 0.83 random)"
    assert passing in _article(html, first.pk)
    other = _article(html, second.pk)
    assert "Heatmap faithfulness: 0.00 · no better than random maps (deletion AUC 0.68 vs 0.64 random)" in other
    assert "Heatmap no better than random" in other  # the badge beside its label
    key_line = re.search(r'id="key-heatmap">(.*?)</div>', html, re.S).group(1)
    assert "<strong>0.75</strong>" in key_line and "beats random maps" in key_line
    # The other slice's map fails, but the key slice's passes: no warning box.
    assert WARNING not in html and 'id="heatmap-warning"' not in html


@pytest.mark.parametrize("key_fails", [True, False])
def test_the_warning_appears_exactly_when_the_key_slices_map_does_no_better_than_random(staff_user, key_fails):
    key = _result("glioma", confidence=0.95, faithfulness=FAILS if key_fails else PASSES)
    report = _report(staff_user, key, _result("notumor", faithfulness=PASSES if key_fails else FAILS))
    html = _page(staff_user, report)
    assert report.key_scan_id == _scans(report)[0].pk
    box = re.search(r'<div class="alert alert-warn heatmap-warning" role="alert" id="heatmap-warning">(.*?)</div>',
                    html, re.S)
    assert (box is not None) is key_fails
    assert (WARNING in html) is key_fails
    if key_fails:
        text = box.group(1)
        assert f"<strong>{WARNING}.</strong>" in text
        assert "deletion AUC 0.68 for the map against 0.64 for random maps" in text
        assert "5%–30% of pixels" in text


def test_a_check_stored_without_beats_random_is_judged_from_its_aucs(staff_user):
    older = {"map_auc": 0.7, "random_auc": 0.5, "gain": -0.2}  # no beats_random, no fractions
    report = _report(staff_user, _result("glioma", faithfulness=older))
    html = _page(staff_user, report)
    assert WARNING in html and "deletion AUC 0.70 for the map against 0.50 for random maps" in html


def test_a_check_not_computed_says_so_and_offers_to_compute_it(staff_user):
    report = _report(staff_user, _result("glioma", faithfulness=None))
    scan = _scans(report)[0]
    html = _page(staff_user, report)
    assert WARNING not in html
    key_line = re.search(r'id="key-heatmap">(.*?)</div>', html, re.S).group(1)
    assert "<strong>not computed</strong>" in key_line
    assert f'action="{reverse("scans:report-detail", args=[report.pk])}"' in key_line
    assert f'name="scan" value="{scan.pk}"' in key_line
    assert "Heatmap faithfulness: not computed" in _article(html, scan.pk)

    # The Compute button queues the detail pass for that slice (the real view and service).
    response = _client(staff_user).post(reverse("scans:report-detail", args=[report.pk]), {"scan": scan.pk})
    assert response.status_code == 302

    # Once the detail pass stores the check, the page shows it.
    assert services.record_detail(scan.pk, model_version=report.model_version, saliency_png=None,
                                  faithfulness=FAILS)
    html = _page(staff_user, report)
    assert "not computed" not in re.search(r'id="key-heatmap">(.*?)</div>', html, re.S).group(1)
    assert WARNING in html


def test_a_slice_the_guard_rejected_shows_the_verdict_and_score_and_no_confidence(staff_user):
    rejected = _result("glioma", in_distribution=False, confidence=0.87, guard=REJECTED)
    report = _report(staff_user, _result("glioma", confidence=0.95), rejected)
    accepted_scan, rejected_scan = _scans(report)
    assert Analysis.objects.get(scan=rejected_scan).label == "not_brain_mri"
    html = _page(staff_user, report)
    row = _article(html, rejected_scan.pk)
    assert "Input guard: rejected by the input guard" in row
    assert "guard score 3.42 (rejects above 1.00), highest on feature distance from the training images" in row
    assert "no dark background around the head" in row  # the guard's reasons
    assert "confidence" not in row.lower() and "87.0%" not in row.split("Tumour classifier output")[0]
    assert "95.0% confidence" in _article(html, accepted_scan.pk)


def test_the_study_page_lists_a_rejected_slice_by_the_guards_verdict(staff_user):
    rejected = _result("glioma", in_distribution=False, confidence=0.87, guard=REJECTED)
    report = _report(staff_user, _result("glioma", confidence=0.95), rejected)
    html = _client(staff_user).get(reverse("scans:study", args=[report.study_id])).content.decode()
    rows = re.findall(r"<tr>\s*<td>.*?</tr>", html, re.S)
    assert len(rows) == 2
    assert "95.0%" in rows[0]
    assert "rejected by the input guard" in rows[1] and "guard score 3.42 (rejects above 1.00)" in rows[1]
    assert "87.0%" not in rows[1] and "confidence" not in rows[1].lower()


def test_a_study_the_guard_rejected_whole_shows_the_verdict_in_the_finding(staff_user):
    report = _report(staff_user, _result("glioma", in_distribution=False, confidence=0.87, guard=REJECTED))
    assert report.label == "not_brain_mri"
    html = _page(staff_user, report)
    head = re.search(r'<div class="report-head">(.*?)</div>', html, re.S).group(1)
    assert "Rejected by the input guard" in head and "guard score 3.42" in head
    assert "confidence" not in head.lower() and "87.0%" not in head
    print_html = _page(staff_user, report, "scans:report-print")
    finding = re.search(r"<h2>AI finding.*?</p>", print_html, re.S).group(0)
    assert "rejected by the input guard (key slice: guard score 3.42" in finding
    assert "confidence" not in finding.lower()


def test_the_page_overlays_the_stored_heatmap_on_the_preview_with_a_slider_and_legends(staff_user):
    report = _report(staff_user, _result("glioma"))
    scan = _scans(report)[0]
    a = scan.analysis
    response = _client(staff_user).get(reverse("scans:report", args=[report.pk]))
    html = response.content.decode()
    row = _article(html, scan.pk)
    stack = re.search(r'<div class="heat-stack" data-heat-stack data-preview-src="[^"]+" style="([^"]*)">'
                      r'<img class="heat-layer" data-heat-layer src="([^"]+)"[^>]*style="opacity: 0.4"', row)
    assert stack, row
    assert stack.group(2) == a.heatmap.url  # the stored heatmap, not a re-render
    assert f"background-image: url('{scan.image.url}')" in stack.group(1)
    assert f"aspect-ratio: {scan.columns} / {scan.rows}" in stack.group(1)
    assert 'id="heat-opacity" min="0" max="1" step="0.05" value="0.4"' in html
    assert 'class="legend-bar legend-jet"' in html and 'class="legend-bar legend-hot"' in html
    assert "data-sal-black" in row and "data-sal-blend" in row and 'id="sal-blend"' in html
    # The Content-Security-Policy allows scripts from 'self' only: every script is a file.
    assert "script-src 'self'" in response["Content-Security-Policy"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert any("js/report-maps.js" in attrs for attrs, _ in scripts)
    assert not re.search(r"\son[a-z]+=", html), "no inline event handlers"


def test_past_the_first_three_slices_the_preview_under_the_heatmap_waits_for_the_lazy_heatmap(staff_user):
    report = _report(staff_user, *[_result("glioma") for _ in range(4)])
    html = _page(staff_user, report)
    stacks = re.findall(r'<div class="heat-stack" data-heat-stack data-preview-src="([^"]+)" style="([^"]*)">'
                        r'<img class="heat-layer" data-heat-layer [^>]*>', html)
    assert len(stacks) == 4
    assert all(f"url('{src}')" in style for src, style in stacks[:3])
    assert "background-image" not in stacks[3][1]  # static/js/report-maps.js sets it once the heatmap loads
    assert 'loading="lazy"' in re.findall(r'<img class="heat-layer"[^>]*>', html)[3]


def _gradient(css: str, name: str) -> list[tuple[float, np.ndarray]]:
    body = re.search(rf"\.legend-{name} \{{ background: linear-gradient\(to right, (.*?)\); \}}", css).group(1)
    stops = re.findall(r"rgb\((\d+),(\d+),(\d+)\) ([\d.]+)%", body)
    return [(float(p) / 100, np.array([int(r), int(g), int(b_)], float)) for r, g, b_, p in stops]


@pytest.mark.parametrize("name", ["jet", "hot"])
def test_the_legends_are_the_colormaps_the_heatmap_pngs_use(name):
    """The CSS gradient, sampled at each of the 256 levels, is ml.explain.overlay's lookup table."""
    stops = _gradient((ROOT / "static" / "css" / "report-maps.css").read_text(), name)
    assert stops[0][0] == 0 and stops[-1][0] == 1
    lut = colormap_lut(name).astype(float)
    for i in range(256):
        v = i / 255
        j = next(k for k in range(1, len(stops)) if v <= stops[k][0])
        (p0, c0), (p1, c1) = stops[j - 1], stops[j]
        colour = c0 + (c1 - c0) * (v - p0) / (p1 - p0)
        assert np.abs(colour - lut[i]).max() <= 2.0, (name, i, colour, lut[i])


def test_heat_box_keeps_the_previews_aspect_inside_the_square():
    from scans.templatetags.reviewer import heat_box

    wide = type("S", (), {"rows": 100, "columns": 200})()
    tall = type("S", (), {"rows": 200, "columns": 100})()
    unknown = type("S", (), {"rows": 0, "columns": 0})()
    assert heat_box(wide) == "aspect-ratio: 200 / 100; width: 100.000%"
    assert heat_box(tall) == "aspect-ratio: 100 / 200; width: 50.000%"
    assert heat_box(unknown) == "aspect-ratio: 1 / 1; width: 100%"


def test_a_slice_without_an_analysis_renders_everywhere(staff_user, staff_api):
    report = _report(staff_user, _result("glioma", confidence=0.95), _result("glioma"))
    _, other = _scans(report)
    Analysis.objects.filter(scan=other).delete()  # as a slice not analysed (yet) reads
    html = _page(staff_user, report)
    assert "Heatmap faithfulness" not in _article(html, other.pk)
    assert "No result yet." in _article(html, other.pk)
    _page(staff_user, report, "scans:report-print")
    row = next(r for r in staff_api.get(f"/api/v1/reports/{report.pk}/").json()["scans"] if r["id"] == other.pk)
    assert row["faithfulness_check"] is None and row["guard"] is None


# --- the print view ---------------------------------------------------------------------------


def test_the_print_view_shows_the_check_the_warning_and_the_guard_verdict(staff_user):
    rejected = _result("glioma", in_distribution=False, confidence=0.87, guard=REJECTED)
    report = _report(staff_user, _result("glioma", confidence=0.95, faithfulness=FAILS), rejected)
    html = _page(staff_user, report, "scans:report-print")
    assert f'<div class="warn heatmap-warning"><strong>{WARNING}.</strong>' in html
    key = re.search(r"<h2>Key slice.*?</section>", html, re.S).group(0)
    assert "Heatmap faithfulness: 0.00, no better than random maps (deletion AUC 0.68 vs 0.64 random)" in key
    rows = re.findall(r"<tr><td>\d+</td>.*?</tr>", html, re.S)
    assert len(rows) == 2
    assert "95.0%" in rows[0] and "no better than random maps" in rows[0]
    assert "rejected by the input guard, guard score 3.42 (rejects above 1.00)" in rows[1]
    assert "87.0%" not in rows[1] and "confidence" not in rows[1].lower()

    passing = _report(staff_user, _result("glioma", faithfulness=PASSES), seed=1)
    assert WARNING not in _page(staff_user, passing, "scans:report-print")
    missing = _report(staff_user, _result("glioma", faithfulness=None), seed=2)
    assert "Heatmap faithfulness: not computed" in _page(staff_user, missing, "scans:report-print")


# --- the API ----------------------------------------------------------------------------------


def test_the_api_gives_each_slice_its_check_and_guard_and_the_key_slice_its_warning(staff_user, staff_api):
    rejected = _result("glioma", in_distribution=False, confidence=0.87, guard=REJECTED)
    report = _report(staff_user, _result("glioma", confidence=0.95, faithfulness=FAILS), rejected)
    body = staff_api.get(f"/api/v1/reports/{report.pk}/").json()
    key_row, rejected_row = sorted(body["scans"], key=lambda r: r["id"])
    assert key_row["faithfulness_check"] == {**FAILS, "score": 0.0}
    assert key_row["faithfulness"] == 0.0 and key_row["detail"] == "computed"
    assert key_row["guard"]["verdict"] == "accepted"
    assert rejected_row["label"] == "not_brain_mri"
    assert rejected_row["confidence"] == pytest.approx(0.87)  # kept for compatibility
    assert rejected_row["guard"] == {"verdict": "rejected", "score": 3.4217, "threshold": 1.0,
                                     "components": REJECTED["components"], "reasons": REJECTED["reasons"]}
    ks = body["key_slice"]
    assert ks["scan"] == report.key_scan_id == key_row["id"] and ks["detail"] == "computed"
    assert ks["warning"]["text"] == WARNING
    assert "deletion AUC 0.68 for the map against 0.64 for random maps" in ks["warning"]["why"]
    assert ks["faithfulness_check"]["beats_random"] is False and ks["guard"]["verdict"] == "accepted"

    # The study endpoint's rows are the same rows.
    study = staff_api.get(f"/api/v1/studies/{report.study_id}/").json()
    assert sorted(study["scans"], key=lambda r: r["id"])[1]["guard"]["verdict"] == "rejected"


def test_the_api_says_not_computed_and_no_warning_when_the_check_is_absent(staff_user, staff_api):
    report = _report(staff_user, _result("glioma", faithfulness=None))
    body = staff_api.get(f"/api/v1/reports/{report.pk}/").json()
    row = body["scans"][0]
    assert row["faithfulness_check"] is None and row["faithfulness"] is None and row["detail"] == "not computed"
    assert body["key_slice"]["detail"] == "not computed" and body["key_slice"]["warning"] is None
    assert body["key_slice"]["faithfulness_check"] is None


def test_the_openapi_schema_describes_the_new_fields(staff_api):
    schema = staff_api.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    assert {"faithfulness_check", "guard"} <= set(components["Scan"]["properties"])
    assert "key_slice" in components["ReportDetail"]["properties"]


# --- a signed version is drawn from its snapshot ------------------------------------------------


@pytest.mark.parametrize("signed_with, live", [(PASSES, FAILS), (FAILS, PASSES)])
def test_a_signed_version_shows_the_check_and_guard_it_was_signed_with(staff_user, radiologist, staff_api,
                                                                       signed_with, live):
    report = _report(staff_user, _result("glioma", confidence=0.95, faithfulness=signed_with),
                     _result("glioma", in_distribution=False, guard=REJECTED))
    services.sign_report(report, radiologist, findings="Mass.", impression="Glioma likely.")
    report = Report.objects.get(pk=report.pk)
    key_scan, rejected_scan = _scans(report)
    assert report.snapshot["slices"][0]["analysis"]["faithfulness"] == signed_with
    assert report.snapshot["slices"][1]["analysis"]["guard"] == REJECTED
    # Later changes to the live rows (a later detail pass, a stray write).
    Analysis.objects.filter(scan=key_scan).update(faithfulness=live)
    Analysis.objects.filter(scan=rejected_scan).update(guard={**REJECTED, "score": 7.777})

    warned = signed_with is FAILS
    for name in ("scans:report", "scans:report-print"):
        html = _page(staff_user, report, name)
        assert (WARNING in html) is warned, name
        assert "guard score 3.42" in html and "7.78" not in html, name
    body = staff_api.get(f"/api/v1/reports/{report.pk}/").json()
    assert (body["key_slice"]["warning"] is not None) is warned
    assert body["key_slice"]["faithfulness_check"]["map_auc"] == signed_with["map_auc"]
    rows = sorted(body["scans"], key=lambda r: r["id"])
    assert rows[0]["faithfulness_check"]["beats_random"] is signed_with["beats_random"]
    assert rows[1]["guard"]["score"] == 3.4217


# --- the helpers behind all three -------------------------------------------------------------------


def test_slice_facts_read_partial_and_missing_values_without_failing():
    a = type("A", (), {"faithfulness": {"gain": 9}, "faithfulness_score": None, "guard": {},
                       "in_distribution": True, "label": "glioma"})()
    check = slice_facts.faithfulness_check(a)
    assert check.beats_random is None and not check.no_better_than_random
    assert check.summary() == "incomplete check"
    guard = slice_facts.guard_verdict(a)
    assert guard.verdict == slice_facts.GUARD_ACCEPTED and guard.score is None
    assert guard.score_text() == "no guard score stored" and guard.strongest == ""
    assert slice_facts.faithfulness_check(None) is None and slice_facts.guard_verdict(None) is None
    assert slice_facts.faithfulness_check("") is None and slice_facts.guard_verdict("") is None  # from a template
