"""Turnaround of a realistic 248-instance study: upload -> awaiting_review, through a real worker.

    .venv/bin/python bench/study_turnaround.py [--model NAME]

The study is built as DICOM the way a Siemens scanner writes it (issue #17's volunteer):
- two 36-slice 64x64 GRE field maps, axial, 2D: magnitude (ImageType ORIGINAL\\PRIMARY\\M\\ND)
  and phase (ORIGINAL\\PRIMARY\\P\\ND), SeriesDescription "gre_field_mapping";
- a 3D T1 MPRAGE, 176 sagittal slices at 1 mm, 256x256 at 1 mm, MRAcquisitionType 3D, built
  from real training slices of ../shared/datasets/brain-tumor-mri (``notumor``; the dataset
  does not say their plane) with 16 empty slices (scanner noise only) at each end.

It starts a private stack (bench/_stack.py, under var/bench-study/ so bench/pipeline.py's
folder is left alone), warms the worker up with a one-image study, uploads the 248 files
through scans.services.register_upload and times, from the commit: the finding
(study "explaining"), and awaiting_review (template LLM provider unless BENCH_LLM_PROVIDER).
The worker's stages (decode, select, model, render, db) come from its log. It prints the
series decisions, the scan counts by status, the finding and its evidence, then one line
of JSON. Figures, never pass/fail.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stack  # noqa: E402
from bench.pipeline import DATASET, _stages, _wait_status, images  # noqa: E402

_stack.WORK = _stack.ROOT / "var" / "bench-study"
STUDY_UID = "1.2.826.0.1.3680043.8.498.17"


def _dataset(series_uid, number, description, image_type, acquisition, orientation, spacing, thickness, i):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, series_uid
    ds.Modality, ds.Manufacturer = "MR", "SIEMENS"
    ds.PatientID, ds.PatientName, ds.StudyDate = "BENCH-248", "Volunteer^Healthy", "20261204"
    ds.StudyDescription, ds.SeriesDescription, ds.SeriesNumber = "Head", description, number
    ds.ImageType, ds.MRAcquisitionType = image_type, acquisition
    ds.InstanceNumber = i + 1
    ds.ImageOrientationPatient = orientation
    ds.PixelSpacing, ds.SliceThickness = [spacing, spacing], thickness
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    return ds


def _file(ds, pixels) -> bytes:
    import numpy as np

    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = np.clip(pixels, 0, 4095).astype(np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def build_study(seed: int = 0) -> list[tuple[str, bytes]]:
    """The 248 files: field map magnitude + phase (36 each), MPRAGE (176)."""
    import numpy as np
    from PIL import Image
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(seed)
    files = []
    axial, sagittal = [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1]
    yy, xx = np.mgrid[:64, :64]
    head = ((yy - 32) ** 2 / 26 ** 2 + (xx - 32) ** 2 / 22 ** 2) < 1
    for number, kind, image_type in ((2, "mag", ["ORIGINAL", "PRIMARY", "M", "ND"]),
                                     (3, "pha", ["ORIGINAL", "PRIMARY", "P", "ND"])):
        uid = generate_uid()
        for i in range(36):
            ds = _dataset(uid, number, "gre_field_mapping", image_type, "2D", axial, 3.4375, 3.0, i)
            if kind == "mag":
                pixels = head * 1500 + rng.normal(0, 30, (64, 64))
            else:
                pixels = rng.uniform(0, 4095, (64, 64))
            files.append((f"fm{number}_{i:03d}.dcm", _file(ds, pixels)))
    paths = sorted((DATASET / "notumor").glob("*.jpg"))[:144]
    if len(paths) < 144:
        sys.exit(f"{DATASET / 'notumor'} needs 144 slices for the MPRAGE")
    real = [np.asarray(Image.open(p).convert("L").resize((256, 256)), np.float32) for p in paths]
    uid = generate_uid()
    for i in range(176):
        ds = _dataset(uid, 4, "t1_mprage_sag_p2_iso", ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"], "3D",
                      sagittal, 1.0, 1.0, i)
        noise = np.abs(rng.normal(0, 12, (256, 256)))
        pixels = noise if i < 16 or i >= 160 else real[i - 16] * 12 + noise
        files.append((f"mprage_{i:03d}.dcm", _file(ds, pixels)))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model name (default: the configured default)")
    args = parser.parse_args()
    files = build_study()
    _env, log = _stack.start_stack()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    from scans import services
    from scans.models import Report, Scan, Series

    user = get_user_model().objects.create_superuser("bench", password="bench-pw-123")
    warm = services.register_upload(user, [SimpleUploadedFile(n, d) for n, d in images(1)],
                                    {"patient_id": "BENCH-WARM"}, model=args.model).studies[0].pk
    _wait_status(warm, {"awaiting_review", "failed"})

    t0 = time.perf_counter()
    result = services.register_upload(user, [SimpleUploadedFile(n, d) for n, d in files], {}, model=args.model)
    t_commit = time.perf_counter()
    study_id = result.studies[0].pk
    t_found = _wait_status(study_id, {"explaining", "awaiting_review", "failed"})
    t_ready = _wait_status(study_id, {"awaiting_review", "failed"})
    stages = _stages(log, study_id)
    report = Report.objects.current().get(study_id=study_id)
    counts = {s: Scan.objects.filter(study_id=study_id, status=s).count() for s in ("analyzed", "skipped", "failed")}
    out = {
        "bench": "study_turnaround", "instances": len(files), "accepted": result.accepted,
        "model": f"{report.model_name} {report.model_version}".strip(), "saliency": settings.BRAINAI_SALIENCY,
        "cpus": os.cpu_count(), "upload_s": round(t_commit - t0, 2),
        "commit_to_finding_s": round(t_found - t_commit, 2), "commit_to_awaiting_review_s": round(t_ready - t_commit, 2),
        "upload_to_awaiting_review_s": round(t_ready - t0, 2),
        "worker_stages_s": {k: round(v, 2) for k, v in stages.items() if k != "analyzed"},
        "scans": counts, "label": report.label, "evidence": report.evidence, "rules_version": report.rules_version,
    }
    print(f"248-instance study, model {out['model']}, {out['cpus']} CPUs, saliency {out['saliency']}")
    for s in Series.objects.filter(study_id=study_id).order_by("number"):
        print(f"  series {s.number} ({s.description}): {'analysed' if s.analysed else 'not analysed'} — "
              f"{s.decision_reason}")
    print(f"scans: {counts}")
    print(f"finding: {report.label} — {report.evidence}")
    for name, key in (("upload (register_upload)", "upload_s"), ("commit -> finding", "commit_to_finding_s"),
                      ("commit -> awaiting_review", "commit_to_awaiting_review_s"),
                      ("upload -> awaiting_review", "upload_to_awaiting_review_s")):
        print(f"{name:<32}{out[key]:>8.2f} s")
    print("worker stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in out["worker_stages_s"].items()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
