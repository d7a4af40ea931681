"""Two instances at the same slice position in one series (MONAI App SDK #532): both are
stored and analysed, and the study's finding is decided without error
(docs/operations.md "Faults")."""
from __future__ import annotations

import pytest

from scans import services
from scans.models import ReportStatus, Scan, ScanStatus
from tests import builders as b

pytestmark = pytest.mark.django_db

UID = "1.2.826.0.1.3680043.8.498.1931"


def _instance(i: int, number: int) -> bytes:
    return b.dicom_bytes(study_uid=UID, series_uid=f"{UID}.1", sop_uid=f"{UID}.1.{i}", instance_number=number,
                         seed=40 + i)


@pytest.mark.parametrize("labels", [("glioma",), ("notumor",)])
def test_two_instances_at_one_position_are_both_analysed_and_the_finding_is_decided(staff_user, labels):
    files = [b.upload(f"i{i}.dcm", _instance(i, n)) for i, n in enumerate([1, 2, 2, 3])]
    result = services.register_upload(staff_user, files)
    assert result.accepted == 4 and result.rejected == []
    study = result.studies[0]
    assert sorted(Scan.objects.filter(study=study).values_list("instance_number", flat=True)) == [1, 2, 2, 3]

    report = b.analyse_study(study, labels)
    assert report is not None and report.label
    assert report.status == ReportStatus.PROCESSING and report.failure_reason == ""
    assert Scan.objects.filter(study=study, status=ScanStatus.ANALYZED).count() == 4
