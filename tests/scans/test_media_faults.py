"""A media write fails (full disk, simulated by a storage that writes half a file and
raises ENOSPC): a clear error, no row that points at a missing or half file, and the
same upload goes through once there is space (docs/operations.md "Faults")."""
from __future__ import annotations

import errno
import hashlib

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.test import override_settings

from scans import services
from scans.models import Analysis, Scan, ScanStatus, Study, Upload
from tests import builders as b
from tests.builders import token_client

pytestmark = pytest.mark.django_db


class FullDisk(FileSystemStorage):
    """Writes ``room`` files, then writes half of the next one and raises ENOSPC."""

    writes = 0

    def __init__(self, *args, room: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.room = room

    def _save(self, name, content):
        FullDisk.writes += 1
        if FullDisk.writes > self.room:
            data = content.read()
            with open(self.path(name), "wb") as fh:  # what a full disk leaves: a truncated file
                fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return super()._save(name, content)


def full_disk(settings, room: int):
    FullDisk.writes = 0
    storages = dict(settings.STORAGES)
    storages["default"] = {"BACKEND": f"{__name__}.FullDisk",
                           "OPTIONS": {"location": str(settings.MEDIA_ROOT), "room": room}}
    return override_settings(STORAGES=storages)


def _stored_files_are_whole():
    for scan in Scan.objects.all():
        with default_storage.open(scan.source.name, "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == scan.sha256, scan.source.name
        assert default_storage.exists(scan.image.name)


@pytest.mark.parametrize("room", [0, 3])  # the first write fails; a later one fails
def test_an_upload_on_a_full_disk_is_refused_clearly_and_records_nothing(settings, staff_user, room):
    files = [b.upload(f"full{i}.png", b.png_bytes(seed=700 + 10 * room + i)) for i in range(3)]
    with full_disk(settings, room):
        response = token_client(staff_user).post("/api/v1/uploads/", {"files": files, "patient_id": "MRN-FULL"},
                                                 format="multipart")
    assert response.status_code == 507, response.content
    assert "media storage refused a write" in response.json()["detail"]
    assert not Scan.objects.exists() and not Study.objects.exists() and not Upload.objects.exists()

    # Space freed: the same files go through, and no half file from the failed try is used.
    files = [b.upload(f"full{i}.png", b.png_bytes(seed=700 + 10 * room + i)) for i in range(3)]
    response = token_client(staff_user).post("/api/v1/uploads/", {"files": files, "patient_id": "MRN-FULL"},
                                             format="multipart")
    assert response.status_code == 202 and response.json()["accepted"] == 3
    _stored_files_are_whole()


def test_a_full_disk_while_storing_results_keeps_the_scans_pending_with_no_analysis(settings, staff_user):
    study = b.upload_study(staff_user, 2, seed=720)
    scans = list(study.scans.order_by("pk"))
    results = [services.ScanResult(s.pk, b.slice_result(), b"\x89PNG-heat", b"\x89PNG-overlay") for s in scans]
    with full_disk(settings, 1), pytest.raises(OSError):
        services.record_analyses(results, model_name="cnn", model_version="v")
    assert not Analysis.objects.exists()
    assert set(Scan.objects.values_list("status", flat=True)) == {ScanStatus.PENDING}
