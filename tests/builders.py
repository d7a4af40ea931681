"""Test inputs made on the fly: brain-like images, DICOM files, ZIPs, upload objects.

No patient data: names and ids are invented. Real dataset slices are used only when
../shared/datasets is present (CI has it); otherwise a synthetic head phantom.
"""
from __future__ import annotations

import io
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "brain-tumor-mri" / "Training"


def phantom(size: int = 128, seed: int = 0) -> np.ndarray:
    """(size, size) uint8: an ellipse 'head' with a brighter blob, a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    head = ((yy - 0.5) / 0.42) ** 2 + ((xx - 0.5) / 0.36) ** 2 < 1.0
    cy, cx = 0.35 + 0.3 * rng.random(), 0.35 + 0.3 * rng.random()
    blob = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.008
    img = 0.45 * head + 0.4 * blob + 0.05 * rng.random((size, size))
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def dataset_slices(n: int, label: str = "glioma") -> list[Path]:
    folder = DATASET / label
    return sorted(folder.glob("*.jpg"))[:n] if folder.is_dir() else []


def jpeg_bytes(seed: int = 0, size: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(phantom(size, seed)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def png_bytes(seed: int = 0, size: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(phantom(size, seed)).save(buf, format="PNG")
    return buf.getvalue()


def brain_jpegs(n: int, label: str = "glioma") -> list[bytes]:
    """n distinct JPEG slices: dataset ones when present, else phantoms."""
    real = [p.read_bytes() for p in dataset_slices(n, label)]
    return real + [jpeg_bytes(seed=1000 + i) for i in range(n - len(real))]


def dicom_bytes(*, patient_id="P-DCM-1", patient_name="Test^Person", study_uid="1.2.826.0.1.3680043.8.498.1",
                series_uid="1.2.826.0.1.3680043.8.498.1.1", sop_uid="1.2.826.0.1.3680043.8.498.1.1.1",
                instance_number=1, frames: int = 1, size: int = 64, seed: int = 0,
                birth_date: date | None = date(1970, 1, 2), sex="F") -> bytes:
    """A small MR Image Storage file (uint16, MONOCHROME2), multi-frame when frames > 1."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid()
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = "MR"
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientSex = sex
    if birth_date:
        ds.PatientBirthDate = birth_date.strftime("%Y%m%d")
    ds.StudyDate = "20260101"
    ds.StudyDescription = "MRI brain"
    ds.SeriesDescription = "T1 post"
    ds.InstanceNumber = instance_number
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    stack = np.stack([phantom(size, seed + i).astype(np.uint16) * 16 for i in range(frames)])
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.PixelData = stack.tobytes()
    else:
        ds.PixelData = stack[0].tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


# --- domain states, reached through the real services (no worker needed) ----------------


def slice_result(label: str = "glioma", *, confidence: float = 0.9, in_distribution: bool = True, size: int = 64):
    """A real ml SliceResult with chosen values (what the Analyzer would return)."""
    from ml.analyzer import SliceResult

    classes = ("glioma", "meningioma", "notumor", "pituitary")
    top = label if label in classes else "notumor"
    rest = (1.0 - confidence) / 3
    probabilities = {c: (confidence if c == top else rest) for c in classes}
    heat = np.zeros((size, size), np.float32)
    heat[size // 4: size // 2, size // 4: size // 2] = 1.0
    return SliceResult(
        label=label if in_distribution else "not_brain_mri", probabilities=probabilities, confidence=confidence,
        in_distribution=in_distribution, guard={"in_distribution": in_distribution, "score": 0.1},
        gradcam=heat, gradcam_pp=None, saliency=None,
        region={"peak": {"x": "left", "y": "anterior", "frame": "image"}, "hot_spots": 1},
        faithfulness={"map_auc": 0.2, "random_auc": 0.5, "gain": 0.3, "beats_random": True},
        timings={"model": 0.01}, predicted_label=top,
    )


def upload_study(user, n: int = 2, *, patient_id: str = "P-100", seed: int = 0, **fields):
    """Register n PNG slices for one patient; returns the Study (analysis pending)."""
    from scans import services

    files = [upload(f"img{seed + i}.png", png_bytes(seed=seed + i)) for i in range(n)]
    result = services.register_upload(user, files, {"patient_id": patient_id, **fields})
    assert result.accepted == n, result.rejected
    return result.studies[0]


def analyse_study(study, labels=("glioma",), *, confidence: float = 0.9, in_distribution: bool = True):
    """Store analyses for every pending scan (labels cycle) and set the report's finding."""
    from scans import services
    from scans.services.images import grey_png

    scans = services.claim_batch(study.pk, 10_000, 99)
    results = []
    for i, scan in enumerate(scans):
        r = slice_result(labels[i % len(labels)], confidence=confidence, in_distribution=in_distribution)
        png = grey_png(r.gradcam)
        results.append(services.ScanResult(scan.pk, r, png, png, None))
    services.record_analyses(results, model_name="test-model", model_version="0123456789ab")
    return services.complete_analysis(study.pk)


def explain_and_finalize(report):
    """Record a template-style explanation and move the report to awaiting_review."""
    from ml.llm import Explanation
    from scans import services

    text = "The model's finding is shown for review. Decision support only; not for diagnostic use."
    services.record_explanation(report.pk, Explanation(text, "template", "template-v1", "t1", 3))
    return services.finalize_report(report.pk)


def ready_report(user, n: int = 2, labels=("glioma",), **kwargs):
    """A study uploaded, analysed and explained: its report awaits review."""
    study = upload_study(user, n, **kwargs)
    report = analyse_study(study, labels)
    return explain_and_finalize(report)
