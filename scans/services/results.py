"""A report version's results as plain dicts, and as the DICOM files dicom_out builds.

A signed version reads from its snapshot (scans.snapshot), never from the live rows, so
the verified SR says what the radiologist signed. The patient and study modules are
copied from a received DICOM header of the study (the PACS files our outputs with the
study); for images without tags, from the Patient and Study rows.
"""
from __future__ import annotations

from collections import defaultdict

from django.core.files.storage import default_storage
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import generate_uid

import dicom_out
from scans import snapshot
from scans.models import Label, Report, ScanStatus, Series

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
_STUDY_KEYS = {"patient_id": "PatientID", "patient_name": "PatientName", "patient_birth_date": "PatientBirthDate",
               "patient_sex": "PatientSex", "study_date": "StudyDate", "study_time": "StudyTime",
               "accession_number": "AccessionNumber", "study_id": "StudyID",
               "referring_physician_name": "ReferringPhysicianName"}


def _header(name: str) -> Dataset | None:
    try:
        with default_storage.open(name, "rb") as fh:
            return dcmread(fh, stop_before_pixels=True)
    except (InvalidDicomError, OSError, ValueError):
        return None


def study_module(report: Report, headers: list[Dataset]) -> dict:
    """The patient and study attributes our outputs carry (from the first header, else the rows)."""
    study = report.study
    if headers:
        first = headers[0]
        out = {key: str(first.get(tag, "") or "") for key, tag in _STUDY_KEYS.items()}
    else:
        patient = study.patient
        out = dict.fromkeys(_STUDY_KEYS, "")
        out.update(patient_id=patient.patient_id, patient_name=patient.name.replace(" ", "^"),
                   patient_birth_date=patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
                   patient_sex=patient.sex, study_date=study.study_date.strftime("%Y%m%d") if study.study_date else "")
    out["study_instance_uid"] = study.study_instance_uid
    return out


def _slices(report: Report) -> list:
    """The version's slices (frozen from the snapshot once signed), each with ``.analysis``."""
    frozen = snapshot.apply(report)
    if frozen is not None:
        return frozen
    return list(report.study.scans.select_related("analysis").order_by("series_id", "instance_number", "frame_index"))


def _suspicion(analysis) -> float:
    """Lower p(notumor) = more suspicious; slices the guard rejected come last."""
    accepted = analysis.in_distribution and analysis.label != Label.NOT_BRAIN_MRI
    return (0 if accepted else 1, float((analysis.probabilities or {}).get(Label.NOTUMOR, 1.0)))


def _person_name(report: Report) -> str | None:
    user = report.signed_by
    if user is None:
        return None
    if user.last_name or user.first_name:
        return f"{user.last_name}^{user.first_name}"
    return f"{user.get_username()}^"


def result_parts(report: Report) -> tuple[dict, dict, list[tuple[dict, str]]]:
    """``(study, result, key_overlays)`` for dicom_out: the dicts its docstrings describe,
    and per key slice (each analysed series' most suspicious slice, and the report's key
    slice) its source reference and overlay file name."""
    report = Report.objects.select_related("study__patient", "signed_by").get(pk=report.pk)
    slices = [s for s in _slices(report) if s.analysis is not None and s.status == ScanStatus.ANALYZED]
    series_rows = {s.pk: s for s in Series.objects.filter(study_id=report.study_id)}
    headers: dict[str, Dataset] = {}
    for s in slices:
        if s.sop_instance_uid and s.source.name not in headers:
            header = _header(s.source.name)
            if header is not None:
                headers[s.source.name] = header
    by_series = defaultdict(list)
    for s in slices:
        by_series[s.series_id].append(s)
    series_out, keys = [], {}
    for series_id, rows in by_series.items():
        row = series_rows.get(series_id)
        if row is None:
            continue
        top = min(rows, key=lambda s: _suspicion(s.analysis))
        keys[top.pk] = top
        instances = {(s.sop_instance_uid, _sop_class(headers, s)) for s in rows if s.sop_instance_uid}
        if not instances:
            continue  # images without tags: nothing to reference
        series_out.append({
            "series_instance_uid": row.series_instance_uid, "number": row.number, "description": row.description,
            "label": top.analysis.label, "probabilities": top.analysis.probabilities,
            "instances": [{"sop_instance_uid": uid, "sop_class_uid": cls} for uid, cls in sorted(instances)],
        })
    key = next((s for s in slices if s.pk == report.key_scan_id), None)
    if key is not None:
        keys[key.pk] = key
    study = study_module(report, list(headers.values()))
    result = {"label": report.label, "evidence": report.evidence, "model_name": report.model_name,
              "model_version": report.model_version, "version": report.version, "verified": report.is_signed,
              "signed_by": _person_name(report), "signed_at": report.signed_at, "series": series_out}
    overlays = []
    for s in sorted(keys.values(), key=lambda s: s.pk):
        if not s.analysis.overlay:
            continue
        row = series_rows[s.series_id]
        overlays.append(({"series_instance_uid": row.series_instance_uid, "number": row.number,
                          "sop_instance_uid": s.sop_instance_uid, "sop_class_uid": _sop_class(headers, s),
                          "scan": s.pk, "model_version": s.analysis.model_version}, s.analysis.overlay.name))
    return study, result, overlays


def _sop_class(headers: dict, scan) -> str:
    header = headers.get(scan.source.name)
    return str(header.SOPClassUID) if header is not None and "SOPClassUID" in header else MR_IMAGE_STORAGE


def overlay_series_uid(study_uid: str) -> str:
    """The overlays' series: one per study, the same on every send (the PACS keeps one copy)."""
    return generate_uid(entropy_srcs=[study_uid, "brainai-overlays"])


def build_files(report: Report, *, sr_target: dict, previous: dict | None, with_overlays: bool) -> list[Dataset]:
    """The SR of ``report`` in ``sr_target``, then (``with_overlays``) one capture per key slice.

    A capture's UID comes from the slice and the model version, so sending it again
    replaces the same instance in the PACS, never adds a copy.
    """
    study, result, overlays = result_parts(report)
    files = [dicom_out.build_sr(study, result, sr_target, previous)]
    if with_overlays:
        series_uid = overlay_series_uid(study["study_instance_uid"])
        for number, (source, name) in enumerate(overlays, start=1):
            with default_storage.open(name, "rb") as fh:
                png = fh.read()
            target = {"series_instance_uid": series_uid, "instance_number": number,
                      "sop_instance_uid": generate_uid(entropy_srcs=[study["study_instance_uid"], "overlay",
                                                                     str(source["scan"]), source["model_version"]])}
            files.append(dicom_out.build_capture(study, source, target, png))
    return files
