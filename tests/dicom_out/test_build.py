"""The SR and secondary captures dicom_out builds: content, flags, and dciodvfy's verdict."""
from __future__ import annotations

import ast
import datetime
import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.uid import generate_uid

from dicom_out import NOT_FOR_DIAGNOSIS, build_capture, build_sr
from dicom_out.capture import MIN_WIDTH, SERIES_DESCRIPTION, burn_legend
from tests.builders import seeded_overlay_png
from tests.pacs import dciodvfy

STUDY_UID = "1.2.826.0.1.3680043.8.498.77"
SERIES_UID = STUDY_UID + ".1"
MR = "1.2.840.10008.5.1.4.1.1.4"
STUDY = {"study_instance_uid": STUDY_UID, "patient_id": "P-DCM-1", "patient_name": "Test^Person",
         "patient_birth_date": "19700102", "patient_sex": "F", "study_date": "20260101", "study_time": "101500",
         "accession_number": "A1", "study_id": "1", "referring_physician_name": ""}
# dciodvfy's warnings we accept, as docs/integration.md lists them: our private coding
# scheme for the labels, and Laterality present but empty (the brain is not paired).
ACCEPTED_WARNINGS = (
    "Unrecognized defined term <99BRAINAI> for value 1 of attribute <Coding Scheme Designator>",
    "should be absent (not empty) if an unpaired body part",
)
INSTANCES = [{"sop_class_uid": MR, "sop_instance_uid": f"{SERIES_UID}.{i}"} for i in (1, 2, 3)]


def _result(label="glioma", *, verified=False, series_label="glioma"):
    return {"label": label, "evidence": "3 contiguous slices of series 2 at p >= 0.6", "model_name": "xception",
            "model_version": "0123456789ab", "version": 1, "verified": verified,
            "signed_by": "House^Gregory" if verified else None,
            "signed_at": datetime.datetime(2026, 1, 2, 3, 4, 5) if verified else None,
            "series": [{"series_instance_uid": SERIES_UID, "number": 2, "description": "T1 post", "label": series_label,
                        "probabilities": {"glioma": 0.81, "meningioma": 0.09, "notumor": 0.06, "pituitary": 0.04},
                        "instances": INSTANCES}]}


def _target():
    return {"series_instance_uid": generate_uid(), "sop_instance_uid": generate_uid(), "instance_number": 1}


def _items(ds):
    """Every content item of an SR, depth first: (value type, concept meaning, value)."""
    out = []
    for item in ds.get("ContentSequence", []):
        meaning = item.ConceptNameCodeSequence[0].CodeMeaning if "ConceptNameCodeSequence" in item else ""
        value = {"TEXT": lambda i: i.TextValue, "CODE": lambda i: i.ConceptCodeSequence[0].CodeValue,
                 "NUM": lambda i: float(i.MeasuredValueSequence[0].NumericValue)}.get(item.ValueType, lambda i: None)(item)
        out.append((item.ValueType, meaning, value))
        out += _items(item)
    return out


def _check(ds, tmp_path) -> None:
    """dciodvfy finds no error, and no warning beyond the accepted ones."""
    errors, warnings = dciodvfy(_encoded(ds), tmp_path)
    assert errors == []
    assert [w for w in warnings if not any(a in w for a in ACCEPTED_WARNINGS)] == []


def _encoded(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def test_the_unverified_sr_holds_the_finding_the_series_and_the_warning(tmp_path):
    sr = build_sr(STUDY, _result(), _target())
    items = _items(sr)
    assert sr.VerificationFlag == "UNVERIFIED" and sr.PreliminaryFlag == "PRELIMINARY"
    assert sr.StudyInstanceUID == STUDY_UID and sr.PatientID == "P-DCM-1" and sr.PatientName == "Test^Person"
    assert ("CODE", "Finding", "glioma") in items
    assert ("TEXT", "Comment", NOT_FOR_DIAGNOSIS) in items
    assert ("TEXT", "Comment", "3 contiguous slices of series 2 at p >= 0.6") in items
    assert ("NUM", "Calibrated probability of Glioma", 0.81) in items
    assert any(kind == "TEXT" and value == "xception" for kind, _, value in items)  # algorithm name
    assert any(kind == "TEXT" and value == "0123456789ab" for kind, _, value in items)  # algorithm version
    referenced = {ref.ReferencedSOPInstanceUID for ref in sr.CurrentRequestedProcedureEvidenceSequence[0]
                  .ReferencedSeriesSequence[0].ReferencedSOPSequence}
    assert referenced == {i["sop_instance_uid"] for i in INSTANCES}
    assert "not for diagnostic use" in sr.SeriesDescription
    _check(sr, tmp_path)


def test_the_verified_sr_names_the_radiologist_and_the_sr_it_replaces(tmp_path):
    previous = {"series_instance_uid": generate_uid(), "sop_instance_uid": generate_uid()}
    sr = build_sr(STUDY, _result(verified=True), _target(), previous)
    assert sr.VerificationFlag == "VERIFIED" and sr.PreliminaryFlag == "FINAL" and sr.CompletionFlag == "COMPLETE"
    observer = sr.VerifyingObserverSequence[0]
    assert observer.VerifyingObserverName == "House^Gregory" and observer.VerificationDateTime == "20260102030405"
    replaced = sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert replaced.ReferencedSOPInstanceUID == previous["sop_instance_uid"]
    _check(sr, tmp_path)


def test_an_indeterminate_study_is_said_so(tmp_path):
    sr = build_sr(STUDY, _result("indeterminate", series_label="meningioma"), _target())
    codes = [value for kind, meaning, value in _items(sr) if kind == "CODE" and meaning == "Finding"]
    assert codes == ["indeterminate", "meningioma"]  # the study, then its series
    _check(sr, tmp_path)


def test_the_capture_burns_in_the_legend_and_references_its_slice(tmp_path):
    png = seeded_overlay_png(64)
    source = {**INSTANCES[1], "series_instance_uid": SERIES_UID, "number": 2}
    sc = build_capture(STUDY, source, _target(), png)
    pixels = sc.pixel_array  # (rows, columns, 3)
    assert pixels.shape[1] == MIN_WIDTH and pixels.shape[0] > MIN_WIDTH
    band = pixels[MIN_WIDTH:]  # below the scaled overlay: text and colour bar, not black
    assert (band.max(axis=2) > 200).mean() > 0.02
    assert sc.BurnedInAnnotation == "YES" and sc.SeriesDescription == SERIES_DESCRIPTION
    assert "not for diagnostic use" in sc.SeriesDescription
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == INSTANCES[1]["sop_instance_uid"]
    assert sc.StudyInstanceUID == STUDY_UID and sc.PatientID == "P-DCM-1"
    _check(sc, tmp_path)


def test_the_legend_band_differs_from_a_plain_scaled_overlay():
    png = seeded_overlay_png(64)
    plain = np.asarray(Image.open(io.BytesIO(png)).convert("RGB").resize((MIN_WIDTH, MIN_WIDTH), Image.Resampling.NEAREST))
    burned = burn_legend(png)
    assert np.array_equal(burned[:MIN_WIDTH], plain)  # the overlay itself is untouched
    assert burned.shape[0] - MIN_WIDTH >= 48


def test_dicom_out_imports_no_django_and_nothing_of_ours():
    forbidden = ("django", "scans", "workers", "brainai_site", "llm", "research", "ml")
    for path in Path(__file__).resolve().parents[2].joinpath("dicom_out").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"
