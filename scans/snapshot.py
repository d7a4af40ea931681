"""A signed report's snapshot: what the radiologist saw at sign-off, frozen, with its hash.

``build`` reads the report and its study's slices into plain JSON (the finding, every
slice's result and map files, the explanation, the model, the review); ``digest`` is the
sha256 of its canonical form. Services store both on the signed version
(``Report.snapshot``, ``Report.snapshot_sha256``); pages and the API read a signed version
through ``frozen_slices``/``apply`` so later changes to Scan or Analysis rows (a later
saliency pass, an admin action) never show in it. Anyone can check a snapshot:

    sha256(json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())

The API serves those exact bytes at ``/api/v1/reports/<id>/snapshot/``.

Format 2 adds the radiologist's structured verdict to the review part (``verdict``,
``verdict_label``: "" when not recorded); format 1 snapshots have neither and read as "".
"""
from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass

from django.core.exceptions import ObjectDoesNotExist
from django.core.files.storage import default_storage
from django.db import models

from scans.models import Analysis, Scan

FORMAT = 2
# Report attributes a snapshot restores on read: attribute -> (section, key).
_REPORT_VALUES = {
    "label": ("finding", "label"), "confidence": ("finding", "confidence"),
    "probabilities": ("finding", "probabilities"), "key_scan_id": ("finding", "key_scan"),
    "model_name": ("model", "name"), "model_version": ("model", "version"),
    "explanation_text": ("explanation", "text"), "explanation_provider": ("explanation", "provider"),
    "explanation_model": ("explanation", "model"), "explanation_prompt_version": ("explanation", "prompt_version"),
    "explanation_fallback_reason": ("explanation", "fallback_reason"),
    "findings": ("review", "findings"), "impression": ("review", "impression"),
    "verdict": ("review", "verdict"), "verdict_label": ("review", "verdict_label"),
}


def canonical(snapshot: dict) -> bytes:
    """The bytes the hash is taken over: sorted keys, no spaces, UTF-8."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest(snapshot: dict) -> str:
    """sha256 (hex) of the snapshot's canonical JSON."""
    return hashlib.sha256(canonical(snapshot)).hexdigest()


def _when(value) -> str | None:
    return value.isoformat() if value is not None else None


def _user(user) -> str | None:
    if user is None:
        return None
    # Migration-time user models have fields but no methods.
    return user.get_username() if hasattr(user, "get_username") else user.username


def _value(field, value):
    if isinstance(field, models.FileField):
        return value.name if value else ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def _row(obj) -> dict:
    """Every stored field of a row, by attribute name (``series_id``), as JSON values."""
    return {f.attname: _value(f, getattr(obj, f.attname)) for f in obj._meta.concrete_fields}


def _slice(scan) -> dict:
    """A slice as stored now: every field of the Scan and of its Analysis (None before one)."""
    return {**_row(scan), "analysis": _row(scan.analysis) if _has_analysis(scan) else None}


def _has_analysis(scan) -> bool:
    try:
        return scan.analysis is not None
    except ObjectDoesNotExist:  # no Analysis row (also on migration-time models)
        return False


def review_part(report) -> dict:
    """The radiologist's part of a version: text, the structured verdict, who reviewed and signed, when.

    Migration-time models from before 0008 have no verdict fields: "" then.
    """
    return {"findings": report.findings, "impression": report.impression,
            "verdict": getattr(report, "verdict", ""), "verdict_label": getattr(report, "verdict_label", ""),
            "reviewed_by": _user(report.reviewed_by), "reviewed_at": _when(report.reviewed_at),
            "signed_by": _user(report.signed_by), "signed_at": _when(report.signed_at)}


def build(report, *, status: str) -> dict:
    """The snapshot of ``report`` as it is now, for a version with ``status``.

    ``report`` may be a migration-time model: only fields and relations are read.
    """
    scans = report.study.scans.select_related("analysis").order_by("series_id", "instance_number", "frame_index", "id")
    return {
        "format": FORMAT, "study": report.study_id, "version": report.version, "status": str(status),
        "previous_version": report.previous.version if report.previous_id else None,
        "failure_reason": report.failure_reason,
        "finding": {"label": report.label, "confidence": report.confidence, "probabilities": report.probabilities,
                    "key_scan": report.key_scan_id},
        "model": {"name": report.model_name, "version": report.model_version},
        "explanation": {"text": report.explanation_text, "provider": report.explanation_provider,
                        "model": report.explanation_model, "prompt_version": report.explanation_prompt_version,
                        "fallback_reason": report.explanation_fallback_reason,
                        "generated_at": _when(report.explanation_generated_at)},
        "review": review_part(report),
        "slices": [_slice(s) for s in scans],
    }


def amended(previous: dict, report, *, status: str) -> dict:
    """An amendment's snapshot: the signed version's AI part, the amendment's review."""
    return {**previous, "version": report.version, "status": str(status), "previous_version": previous["version"],
            "review": review_part(report)}


def is_intact(report) -> bool | None:
    """Whether the stored hash matches the stored snapshot; None for a version without one."""
    if not report.snapshot:
        return None
    return digest(report.snapshot) == report.snapshot_sha256


@dataclass
class FrozenFile:
    """A map or image named in a snapshot; ``url`` as a FileField's would be."""

    name: str

    def __bool__(self) -> bool:
        return bool(self.name)

    @property
    def url(self) -> str:
        return default_storage.url(self.name)


class FrozenRow:
    """A row read back from a snapshot: its stored fields as attributes, files as FrozenFile,
    ``get_<field>_display`` for fields with choices, and the model's derived properties
    (``FrozenScan``/``FrozenAnalysis`` borrow them). Nothing here touches the database."""

    model: type[models.Model]

    def __init__(self, values: dict):
        for f in self.model._meta.concrete_fields:
            value = values.get(f.attname)
            setattr(self, f.attname, FrozenFile(value or "") if isinstance(f, models.FileField) else value)
        self.pk = self.id

    def __getattr__(self, name: str):
        field_name = name[len("get_"):-len("_display")] if name.startswith("get_") and name.endswith("_display") else None
        if field_name:
            choices = dict(self.model._meta.get_field(field_name).flatchoices)
            return lambda: choices.get(getattr(self, field_name), getattr(self, field_name))
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")


def _frozen_class(model: type[models.Model]) -> type[FrozenRow]:
    props = {name: value for name, value in vars(model).items() if isinstance(value, property)}
    return type(f"Frozen{model.__name__}", (FrozenRow,), {"model": model, **props})


FrozenScan = _frozen_class(Scan)
FrozenAnalysis = _frozen_class(Analysis)


def frozen_slices(snapshot: dict) -> list[FrozenRow]:
    """The snapshot's slices as objects the report page, print view and API rows read."""
    out = []
    for row in snapshot["slices"]:
        scan = FrozenScan(row)
        scan.analysis = FrozenAnalysis(row["analysis"]) if row["analysis"] is not None else None
        out.append(scan)
    return out


def apply(report) -> list | None:
    """Put a signed version's snapshot values on ``report`` (in memory, never saved).

    Returns its frozen slices, or None when the version has no snapshot (not signed):
    callers then read the live rows.
    """
    if not report.snapshot:
        return None
    snap = report.snapshot
    for attr, (section, key) in _REPORT_VALUES.items():
        value = snap[section].get(key, "") if section == "review" and key.startswith("verdict") else snap[section][key]
        setattr(report, attr, value)  # format 1 has no verdict
    report.failure_reason = snap["failure_reason"]
    return frozen_slices(snap)
