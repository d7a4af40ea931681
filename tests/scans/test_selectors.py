"""The worklist: AI-positive first, then low confidence, then the rest."""
from __future__ import annotations

import pytest

from scans import selectors
from tests import builders as b

pytestmark = pytest.mark.django_db


def test_the_worklist_puts_positive_then_uncertain_then_the_rest(staff_user):
    calm = b.ready_report(staff_user, labels=("notumor",), patient_id="W-1", seed=10)
    unsure_study = b.upload_study(staff_user, 1, patient_id="W-2", seed=20)
    unsure = b.explain_and_finalize(b.analyse_study(unsure_study, ("notumor",), confidence=0.5))
    positive = b.ready_report(staff_user, labels=("meningioma",), patient_id="W-3", seed=30)
    waiting = b.upload_study(staff_user, 1, patient_id="W-4", seed=40).report

    order = [r.pk for r in selectors.worklist()]

    assert order == [positive.pk, unsure.pk, calm.pk, waiting.pk]


def test_the_worklist_filters(staff_user):
    b.ready_report(staff_user, labels=("glioma",), patient_id="W-5", patient_name="Greta Example", seed=50)
    b.ready_report(staff_user, labels=("notumor",), patient_id="W-6", seed=60)

    assert [r.study.patient.patient_id for r in selectors.worklist(label="glioma")] == ["W-5"]
    assert [r.study.patient.patient_id for r in selectors.worklist(q="greta")] == ["W-5"]
    assert [r.study.patient.patient_id for r in selectors.worklist(patient_id="W-6")] == ["W-6"]
    assert selectors.worklist(status="signed").count() == 0


def test_report_detail_needs_few_queries(ready_report, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        report = selectors.report_detail(ready_report.pk)
        assert [s.analysis.label for s in report.study.scans.all()] == ["glioma", "glioma"]
