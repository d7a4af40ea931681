"""Work left waiting (broker down, worker lost) is sent again by `manage.py requeue`."""
from __future__ import annotations

import logging

import pytest
from django.core.management import call_command

from scans import services
from tests.broker import broker_at, free_port
from tests import builders as b

pytestmark = pytest.mark.django_db


def test_each_kind_of_waiting_work_is_sent_again(staff_user, sent):
    waiting = b.upload_study(staff_user, 1, seed=10)
    explaining = b.analyse_study(b.upload_study(staff_user, 1, seed=20))
    ready = b.ready_report(staff_user, seed=30)

    counts = services.requeue_stalled()

    assert counts == {"analyze": 1, "explain": 1, "finalize": 0}
    assert ("workers.tasks.analyze_study", (waiting.pk,)) in sent
    assert ("workers.tasks.explain_report", (explaining.pk,)) in sent
    assert ("workers.tasks.analyze_study", (ready.study_id,)) not in sent
    assert not [call for call in sent if call[0] != "workers.tasks.analyze_study" and call[1] == (ready.pk,)]


def test_a_report_explained_but_not_finalised_is_finalised(staff_user, sent):
    from llm import Explanation

    report = b.analyse_study(b.upload_study(staff_user, 1, seed=40))
    services.record_explanation(report.pk, Explanation("text", "template", "t", "v", 1))

    assert services.requeue_stalled()["finalize"] == 1
    assert ("workers.tasks.finalize_report", (report.pk,)) in sent


def test_with_the_broker_down_nothing_is_lost_and_the_log_says_so(staff_user, caplog, settings):
    b.upload_study(staff_user, 1, seed=50)
    with broker_at(f"redis://127.0.0.1:{free_port()}/0"), \
            caplog.at_level(logging.ERROR, logger="scans.services.queue"):
        call_command("requeue")
    assert "broker unreachable" in caplog.text
