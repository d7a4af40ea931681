"""The detail pass: the first pass leaves saliency and the faithfulness check "not
computed"; the low-priority task computes them for the slices that carry the finding,
and on demand for others. Real model, real database (tasks run with ``Task.apply``)."""
from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from scans import services
from scans.models import Analysis, Report
from scans.services.detail import detail_scan_ids
from tests import builders as b
from workers import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def _run(task, *args):
    result = task.apply(args=args)
    assert result.successful(), result.traceback
    return result.result


def test_the_first_pass_leaves_saliency_and_faithfulness_not_computed(staff_user, staff_client):
    study = b.upload_study(staff_user, 3, seed=60)

    _run(tasks.analyze_study, study.pk)

    analyses = list(Analysis.objects.filter(scan__study=study))
    assert len(analyses) == 3 and all(not a.saliency and a.faithfulness is None for a in analyses)
    assert not any(a.detail_computed for a in analyses)
    report = Report.objects.get(study=study)
    html = staff_client.get(reverse("scans:report", args=[report.pk])).content.decode()
    assert html.count("Saliency not computed") == 3 and "Heatmap faithfulness: not computed" in html
    printed = staff_client.get(reverse("scans:report-print", args=[report.pk])).content.decode()
    assert "Not computed" in printed and "Heatmap faithfulness: not computed" in printed
    rows = staff_client.get(f"/api/v1/reports/{report.pk}/").json()["scans"]
    assert {r["detail"] for r in rows} == {"not computed"}
    assert all(r["saliency_url"] is None and r["faithfulness"] is None for r in rows)


def test_the_detail_task_computes_saliency_and_faithfulness_once(staff_user, staff_client):
    study = b.upload_study(staff_user, 2, seed=70)
    _run(tasks.analyze_study, study.pk)
    report = Report.objects.get(study=study)
    wanted = detail_scan_ids(list(Analysis.objects.filter(scan__study=study)), report)
    assert wanted[0] == report.key_scan_id

    first = _run(tasks.analyze_detail, study.pk, wanted)
    again = _run(tasks.analyze_detail, study.pk, wanted)

    assert first["detailed"] == len(wanted) and again["detailed"] == 0
    for analysis in Analysis.objects.filter(scan_id__in=wanted):
        assert analysis.detail_computed and default_storage.exists(analysis.saliency.name)
        assert {"map_auc", "random_auc", "gain"} <= set(analysis.faithfulness)
    rows = {r["id"]: r for r in staff_client.get(f"/api/v1/reports/{report.pk}/").json()["scans"]}
    assert rows[report.key_scan_id]["detail"] == "computed" and rows[report.key_scan_id]["saliency_url"]


def test_detail_is_not_stored_for_other_weights(staff_user):
    study = b.upload_study(staff_user, 1, seed=80)
    _run(tasks.analyze_study, study.pk)
    scan = study.scans.get()

    stored = services.record_detail(scan.pk, model_version="not-these-weights", saliency_png=b"x",
                                    faithfulness={"gain": 0.1})

    assert stored is False and not Analysis.objects.get(scan=scan).detail_computed


def test_the_slices_given_detail_are_the_key_slice_then_those_with_the_finding(staff_user):
    study = b.upload_study(staff_user, 5, seed=90)
    report = b.analyse_study(study, labels=("glioma", "notumor", "glioma", "meningioma", "glioma"))
    analyses = list(Analysis.objects.filter(scan__study=study))
    glioma = {a.scan_id for a in analyses if a.label == "glioma"}

    ids = detail_scan_ids(analyses, report, cap=8)
    capped = detail_scan_ids(analyses, report, cap=2)

    assert ids[0] == report.key_scan_id and set(ids) == glioma
    assert capped == ids[:2]


def test_a_reviewer_asks_for_detail_and_an_outsider_may_not(staff_user, outsider, staff_api, client):
    study = b.upload_study(staff_user, 2, seed=100)
    report = b.analyse_study(study)
    other = study.scans.exclude(pk=report.key_scan_id).first()

    response = staff_api.post(f"/api/v1/reports/{report.pk}/detail/", {"scans": [other.pk]}, format="json")
    client.force_login(outsider)
    refused = client.post(reverse("scans:report-detail", args=[report.pk]), {"scan": other.pk})

    assert response.status_code == 202 and refused.status_code == 403
    with pytest.raises(services.InvalidState):
        services.request_detail(report, staff_user, [987654])
