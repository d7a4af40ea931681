"""The DICOM inbox: instances received over C-STORE are kept as they arrive, and each study
is taken in as one upload once it has been quiet.

``receive_instance`` writes the file (fsynced, then renamed into place) and then its
``DicomInstance`` row, and only then answers success, so an acknowledged instance is on
disk and in the database before the sender forgets it. A failure answers a status the
sender retries on: 0xA700 (storage) or 0xC000 (database). ``take_in_quiet_studies`` hands
every study (with BRAINAI_DICOM_GROUP_BY=ae_study: every sender's part of a study) whose
newest instance is older than the quiet period to ``register_upload``
(``via=dicom``), in the same transaction that marks its rows taken in: a crash leaves the
rows waiting, and the next run (after a restart too) takes them in. Nothing identifying
is logged; the calling AE title is the sender's, not the patient's.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from pydicom import uid as uids

from scans.models import DicomInstance, Study, Via
from scans.services.uploads import register_upload

logger = logging.getLogger(__name__)

# C-STORE response statuses (PS3.4 B.2.3, PS3.7 C.4.2).
SUCCESS = 0x0000
REFUSED_NOT_AUTHORIZED = 0x0124  # a study already signed: new images need a new study
OUT_OF_RESOURCES = 0xA700  # storage full or failing: the sender retries later
DATASET_DOES_NOT_MATCH = 0xA900  # no usable Study or SOP Instance UID
CANNOT_UNDERSTAND = 0xC000  # the database is unavailable: the sender retries later

# The SOP classes stored, over DICOM and DICOMweb: MR images and secondary captures.
ACCEPTED_SOP_CLASSES = frozenset({
    uids.MRImageStorage, uids.EnhancedMRImageStorage, uids.LegacyConvertedEnhancedMRImageStorage,
    uids.SecondaryCaptureImageStorage, uids.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    uids.MultiFrameGrayscaleWordSecondaryCaptureImageStorage, uids.MultiFrameTrueColorSecondaryCaptureImageStorage,
})

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def receive_instance(calling_ae: str, sop_uid: str, study_uid: str, data: bytes) -> int:
    """Keep one received instance; return the C-STORE status to answer.

    Args:
        calling_ae: the sender's AE title.
        sop_uid, study_uid: the instance's SOP Instance UID and Study Instance UID.
        data: the instance as a DICOM file (preamble, file meta, dataset).

    Returns:
        ``SUCCESS`` once file and row are stored, or when this SOP Instance UID was
        received before (counted in ``duplicates``, not stored again); else a failure.
    """
    if not (_valid_uid(sop_uid) and _valid_uid(study_uid)):
        return DATASET_DOES_NOT_MATCH
    try:
        if _count_duplicate(sop_uid):
            return SUCCESS
        if _signed(study_uid):
            logger.info("refused an instance from %s: its study is signed", calling_ae)
            return REFUSED_NOT_AUTHORIZED
    except DatabaseError as exc:
        logger.error("DICOM receive: database unavailable (%s); answered 0xC000", type(exc).__name__)
        return CANNOT_UNDERSTAND
    relative = f"{study_uid}/{sop_uid}.dcm"
    try:
        _write_durably(Path(settings.BRAINAI_DICOM_INBOX) / relative, data)
    except OSError as exc:
        logger.error("DICOM receive: inbox storage failed (%s); answered 0xA700", exc.strerror or type(exc).__name__)
        return OUT_OF_RESOURCES
    try:
        DicomInstance.objects.create(sop_instance_uid=sop_uid, study_instance_uid=study_uid,
                                     calling_ae=calling_ae[:16], path=relative)
    except IntegrityError:  # a concurrent association stored it first; the file is the same instance
        _count_duplicate(sop_uid)
    except DatabaseError as exc:
        logger.error("DICOM receive: database unavailable (%s); answered 0xC000", type(exc).__name__)
        return CANNOT_UNDERSTAND
    return SUCCESS


def has_room(needed_bytes: int = 0) -> bool:
    """Whether the inbox's file system keeps BRAINAI_DICOM_MIN_FREE_MB free after ``needed_bytes``."""
    folder = Path(settings.BRAINAI_DICOM_INBOX)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    return free - needed_bytes >= settings.BRAINAI_DICOM_MIN_FREE_MB * 1024 * 1024


def take_in_quiet_studies(quiet_s: float | None = None, group_by: str | None = None) -> list:
    """Take in every waiting group whose newest instance is ``quiet_s`` seconds old or older.

    A group is a study (``group_by="study"``, the default of BRAINAI_DICOM_GROUP_BY: every
    sender's instances of a Study Instance UID wait for one quiet period and go in as one
    upload) or one calling AE's part of a study (``"ae_study"``: each sender's part is
    quiet, and taken in, on its own; a later part reopens the study as an upload does).

    Returns:
        The ``UploadResult`` of each group taken in.
    """
    quiet_s = settings.BRAINAI_DICOM_STUDY_QUIET_S if quiet_s is None else quiet_s
    group_by = settings.BRAINAI_DICOM_GROUP_BY if group_by is None else group_by
    if group_by not in ("study", "ae_study"):
        raise ValueError(f"unknown DICOM grouping {group_by!r}")
    cutoff = timezone.now() - timedelta(seconds=quiet_s)
    keys = ["study_instance_uid", "calling_ae"] if group_by == "ae_study" else ["study_instance_uid"]
    quiet = (DicomInstance.objects.filter(taken_in_at__isnull=True).values(*keys)
             .annotate(newest=Max("received_at")).filter(newest__lte=cutoff).order_by("newest")
             .values_list(*keys))
    return [r for r in (take_in_study(*group) for group in list(quiet)) if r is not None]


def take_in_study(study_uid: str, calling_ae: str | None = None):
    """Register the study's waiting instances (only ``calling_ae``'s when given) as one upload
    (``via=dicom``), or None if none wait.

    A study already taken in is reopened by its new instances, as an HTTP upload does; a
    signed one refuses them (they stay in the upload's rejected list, with the reason).
    """
    inbox = Path(settings.BRAINAI_DICOM_INBOX)
    waiting = DicomInstance.objects.filter(study_instance_uid=study_uid, taken_in_at__isnull=True)
    if calling_ae is not None:
        waiting = waiting.filter(calling_ae=calling_ae)
    with transaction.atomic():
        rows = list(waiting.select_for_update())
        if not rows:
            return None
        files = [_InboxFile(f"{row.sop_instance_uid}.dcm", inbox / row.path) for row in rows]
        # The priority rules see the sender (BRAINAI_PRIORITY_RULES "calling_ae"); the first
        # instance's when several senders sent parts of one study.
        result = register_upload(None, files, via=Via.DICOM, calling_ae=rows[0].calling_ae)
        DicomInstance.objects.filter(pk__in=[r.pk for r in rows]).update(taken_in_at=timezone.now(),
                                                                          upload=result.upload)
        paths = [inbox / row.path for row in rows]
        transaction.on_commit(lambda: _remove(paths))
    logger.info("DICOM study taken in as upload %s: %d instances%s, %d accepted", result.upload.pk, len(rows),
                f" from {calling_ae}" if calling_ae is not None else "", result.accepted)
    return result


class _InboxFile:
    """An inbox file as register_upload reads it (``.name``, ``.read()``); a lost file reads empty."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:  # refused by intake as "file is empty", never silently dropped
            return b""


def _count_duplicate(sop_uid: str) -> bool:
    return DicomInstance.objects.filter(sop_instance_uid=sop_uid).update(duplicates=F("duplicates") + 1) > 0


def _signed(study_uid: str) -> bool:
    study = Study.objects.filter(study_instance_uid=study_uid).first()
    report = study.report if study is not None else None
    return bool(report is not None and report.is_signed)


def _valid_uid(uid: str) -> bool:
    return bool(uid) and len(uid) <= 64 and bool(_UID.match(uid))


def _write_durably(path: Path, data: bytes) -> None:
    """Write, fsync, rename into place, fsync the folder: the file is whole on disk or absent."""
    if not has_room(len(data)):
        raise OSError(28, "less free space than BRAINAI_DICOM_MIN_FREE_MB")  # ENOSPC, before filling the disk
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # the study's folder, once empty
        except OSError:
            pass

