"""workers.tasks.send_results run in this process (``Task.apply``): its retries stop at the
attempts counted in the database, and a sent delivery is not sent twice."""
from __future__ import annotations

import pytest

from scans import services
from scans.models import DeliveryStatus, Destination, DestinationKind
from tests.builders import analyse_study, dicom_bytes, explain_and_finalize, upload
from tests.pacs import free_port, start_orthanc
from workers import tasks

pytestmark = pytest.mark.django_db

STUDY_UID = "1.2.826.0.1.3680043.8.498.7170"


def _delivery(user, port):
    Destination.objects.create(name="pacs", kind=DestinationKind.CSTORE, ae_title="TESTPACS", host="127.0.0.1",
                               port=port)
    files = [upload("a.dcm", dicom_bytes(study_uid=STUDY_UID, series_uid=STUDY_UID + ".1", sop_uid=STUDY_UID + ".1.1"))]
    study = services.register_upload(user, files, {}).studies[0]
    return explain_and_finalize(analyse_study(study)).deliveries.get()


def test_the_task_retries_until_the_attempts_run_out(staff_user, settings):
    settings.BRAINAI_DELIVERY_MAX_ATTEMPTS = 2
    settings.BRAINAI_DELIVERY_RETRY_S = 0
    delivery = _delivery(staff_user, free_port())  # nothing listens there

    result = tasks.send_results.apply(args=[delivery.pk])  # eager: each retry runs at once

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2
    assert result.successful() and result.result["status"] == "failed"


def test_a_sent_delivery_is_not_sent_again(staff_user, tmp_path):
    pacs = start_orthanc(tmp_path)
    try:
        delivery = _delivery(staff_user, pacs.dicom_port)
        assert tasks.send_results.apply(args=[delivery.pk]).result["status"] == "sent"
        assert tasks.send_results.apply(args=[delivery.pk]).result == {"delivery": delivery.pk,
                                                                     "skipped": "nothing to send"}
        assert len(pacs.instances_of_study(STUDY_UID)) == 2  # the SR and one overlay, once each
    finally:
        pacs.stop()
