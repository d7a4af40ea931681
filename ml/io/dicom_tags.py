"""Read facts from a DICOM header: tolerant typed getters and the study/series summary.

The getters return None (or a default) for absent or unreadable values instead of
raising, so a missing or malformed optional element never stops a read. Used by
:mod:`ml.io.dicom`; the values may identify a patient, so nothing here logs them.
"""
from __future__ import annotations

import datetime as _dt
import math
import struct
from typing import Any


def header_error_types() -> tuple[type[BaseException], ...]:
    """What pydicom raises on a damaged header (values of the wrong length, bad UIDs...)."""
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return (InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, LookupError,
            TypeError, AttributeError, NotImplementedError, OverflowError, struct.error, MemoryError)


def int_tag(ds: Any, keyword: str, default: int | None = None) -> int | None:
    """Element ``keyword`` as an int; ``default`` when absent, empty or not a number."""
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return default
        return int(value)
    except (TypeError, ValueError):
        return default


def text_tag(ds: Any, keyword: str) -> str | None:
    """Element ``keyword`` as stripped text; None when absent, empty or undecodable."""
    try:
        value = ds.get(keyword)
    except header_error_types():  # undecodable text is treated as absent
        return None
    if value is None:
        return None
    text = str(value).strip().strip("\x00").strip()
    return text or None


def date_tag(ds: Any, keyword: str) -> str | None:
    """DICOM DA ('YYYYMMDD', or ACR-NEMA 'YYYY.MM.DD') -> ISO 'YYYY-MM-DD'; else None."""
    text = text_tag(ds, keyword)
    if not text:
        return None
    digits = text.replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return _dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).isoformat()
    except ValueError:
        return None


def floats_tag(ds: Any, keyword: str, n: int) -> list[float] | None:
    """Element ``keyword`` as exactly ``n`` finite floats; None otherwise."""
    try:
        value = ds.get(keyword)
        if value is None:
            return None
        items = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else value
        values = [float(v) for v in items]
    except (TypeError, ValueError):
        return None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        return None
    return values


def float_tag(ds: Any, keyword: str) -> float | None:
    """Element ``keyword`` as one finite float; None when absent or not a number."""
    values = floats_tag(ds, keyword, 1)
    return values[0] if values else None


def multi_text_tag(ds: Any, keyword: str) -> list[str] | None:
    """A multi-valued text element (``ImageType``) as upper-case strings; None when absent."""
    try:
        value = ds.get(keyword)
    except header_error_types():
        return None
    if value is None or value == "":
        return None
    items = [value] if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") else value
    return [str(v).strip().upper() for v in items]


def functional_item(ds: Any, index: int, sequence: str) -> Any | None:
    """First item of a functional-group ``sequence`` for frame ``index`` (per-frame wins)."""
    for groups, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        try:
            item = ds.get(groups)[i]
            seq = item.get(sequence)
            if seq:
                return seq[0]
        except (TypeError, IndexError, AttributeError):
            continue
    return None


# Siemens private tag (0019,100A) NumberOfImagesInMosaic: present on MOSAIC files only.
_SIEMENS_MOSAIC_COUNT = 0x0019100A


def _mosaic_count(ds: Any) -> int | None:
    """Siemens NumberOfImagesInMosaic, or None (a private element: read by tag, not keyword)."""
    try:
        element = ds.get(_SIEMENS_MOSAIC_COUNT)
        return int(element.value) if element is not None and element.value not in (None, b"", "") else None
    except (TypeError, ValueError, AttributeError) + header_error_types():
        return None


def study_meta(ds: Any, tsyntax: str) -> dict[str, Any]:
    """Facts shared by every frame of the file. PHI: never log the result."""
    return {
        "format": "DICOM",
        "modality": text_tag(ds, "Modality"),
        "sop_class_uid": text_tag(ds, "SOPClassUID"),
        "study_instance_uid": text_tag(ds, "StudyInstanceUID"),
        "series_instance_uid": text_tag(ds, "SeriesInstanceUID"),
        "sop_instance_uid": text_tag(ds, "SOPInstanceUID"),
        "instance_number": int_tag(ds, "InstanceNumber"),
        "patient_id": text_tag(ds, "PatientID"),
        "patient_name": text_tag(ds, "PatientName"),
        "patient_birth_date": date_tag(ds, "PatientBirthDate"),
        "patient_sex": text_tag(ds, "PatientSex"),
        "study_date": date_tag(ds, "StudyDate"),
        "study_description": text_tag(ds, "StudyDescription"),
        "series_description": text_tag(ds, "SeriesDescription"),
        "accession_number": text_tag(ds, "AccessionNumber"),
        "image_orientation_patient": floats_tag(ds, "ImageOrientationPatient", 6),
        "pixel_spacing": floats_tag(ds, "PixelSpacing", 2),
        # What series selection (ml.study) reads: what kind of image, how it was acquired.
        "series_number": int_tag(ds, "SeriesNumber"),
        "image_type": multi_text_tag(ds, "ImageType"),
        "mr_acquisition_type": text_tag(ds, "MRAcquisitionType"),
        "slice_thickness": float_tag(ds, "SliceThickness"),
        "image_position_patient": floats_tag(ds, "ImagePositionPatient", 3),
        "images_in_mosaic": _mosaic_count(ds),
        "photometric_interpretation": text_tag(ds, "PhotometricInterpretation"),
        "transfer_syntax_uid": tsyntax,
    }


def sop_class_name(ds: Any) -> str | None:
    """Name of the SOP class (from the data set, else the file meta); None when absent."""
    uid = ds.get("SOPClassUID")
    if not uid and getattr(ds, "file_meta", None) is not None:
        uid = ds.file_meta.get("MediaStorageSOPClassUID")
    return (getattr(uid, "name", "") or str(uid)) if uid else None


def what_it_is(ds: Any) -> str:
    """"; SOP class 'Basic Text SR Storage', modality SR" or "" (no PHI in either)."""
    parts = []
    sop = sop_class_name(ds)
    if sop:
        parts.append(f"SOP class '{sop}'")
    modality = text_tag(ds, "Modality")
    if modality:
        parts.append(f"modality {modality}")
    return "; " + ", ".join(parts) if parts else ""
