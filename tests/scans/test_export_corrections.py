"""manage.py export_corrections (issue #20, part 5): the slices radiologists corrected,
de-identified, in the layout ml.train reads; and the round trip into ``ml.train --data``."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from ml.io.read import read_frames
from ml.labels import CLASSES
from scans import services
from scans.models import AuditAction, AuditEvent, Report, Scan
from scans.services.corrections import MANIFEST_FIELDS
from tests import builders as b

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc
MARCH = dt.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def _sign(report, radiologist, verdict, label="", *, when=MARCH):
    signed = services.sign_report(report, radiologist, verdict=verdict, verdict_label=label)
    Report.objects.filter(pk=signed.pk).update(signed_at=when)
    return signed


def _chunks(png: bytes) -> list[str]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    out, pos = [], 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        out.append(png[pos + 4:pos + 8].decode("ascii"))
        pos += 12 + length
    assert pos == len(png)  # nothing after IEND
    return out


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _manifest(root: Path) -> list[dict]:
    with open(root / "manifest.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == MANIFEST_FIELDS
        return list(reader)


def _dicom_study(staff_user, n: int = 8):
    """A DICOM series carrying the builders' seeded identifiers, with real glioma pixels."""
    slices = [np.asarray(Image.open(io.BytesIO(data)).convert("L").resize((160, 160)), np.uint8)
              for data in b.brain_jpegs(n, "meningioma", 40)]
    files = [b.upload(f"{b.FILE_NAME[:-4]}_{i}.dcm",
                      b.dicom_bytes(patient_id=b.PATIENT_ID, patient_name=b.PATIENT_NAME, study_uid=b.STUDY_UID,
                                    series_uid=b.SERIES_UID, sop_uid=f"{b.SOP_UID}.{i + 1}", instance_number=i + 1,
                                    birth_date=dt.date(1957, 3, 14), pixels=pixels))
             for i, pixels in enumerate(slices)]
    result = services.register_upload(staff_user, files, {})
    assert result.accepted == n, result.rejected
    return result.studies[0]


def test_the_export_holds_the_corrected_slices_pixels_only_and_nothing_that_names_anyone(
        tmp_path, staff_user, radiologist):
    # A DICOM series the AI called glioma on 4 contiguous slices of 8; the radiologist says meningioma.
    study = _dicom_study(staff_user)
    slices = ["notumor"] * 2 + ["glioma"] * 4 + ["notumor"] * 2
    report = b.explain_and_finalize(b.analyse_study(study, results=[b.slice_result(label, confidence=0.995)
                                                                    for label in slices]))
    assert report.label == "glioma" and report.key_scan_id, report.evidence
    _sign(report, radiologist, "disagree", "meningioma")
    glioma_slices = set(Scan.objects.filter(study=study, analysis__label="glioma").values_list("pk", flat=True))
    assert len(glioma_slices) == 4 and report.key_scan_id in glioma_slices

    # AI "no tumour" on 3 slices, the radiologist says pituitary: only the key slice goes.
    nt = b.ready_report(staff_user, 3, labels=("notumor",), seed=20, patient_id=b.PATIENT_ID,
                        patient_name=b.PATIENT_NAME_PLAIN)
    _sign(nt, radiologist, "disagree", "pituitary")
    # Not exported: an agreement, not assessable, a disagreement signed before --since.
    _sign(b.ready_report(staff_user, 2, seed=30), radiologist, "agree")
    _sign(b.ready_report(staff_user, 2, seed=32), radiologist, "not_assessable")
    _sign(b.ready_report(staff_user, 2, seed=34), radiologist, "disagree", "notumor",
          when=dt.datetime(2026, 2, 27, 12, 0, tzinfo=UTC))

    out = tmp_path / "corrections"
    stdout = io.StringIO()
    call_command("export_corrections", "--since", "2026-03-01", str(out), stdout=stdout)
    assert "5 slices from 2 reports" in stdout.getvalue()

    assert sorted(p.name for p in out.iterdir()) == sorted([*CLASSES, "manifest.csv"])
    per_class = {c: sorted((out / c).iterdir()) for c in CLASSES}
    assert {c: len(v) for c, v in per_class.items()} == {"glioma": 0, "meningioma": 4, "notumor": 0, "pituitary": 1}
    rows = _manifest(out)
    assert sorted(r["file"] for r in rows) == sorted(f"{c}/{p.name}" for c, v in per_class.items() for p in v)
    assert {(r["corrected_label"], r["ai_label"], r["model_name"], r["model_version"]) for r in rows} == {
        ("meningioma", "glioma", "test-model", "0123456789ab"), ("pituitary", "notumor", "test-model", "0123456789ab")}

    # Pixel data only: the stored originals' pixels, re-encoded, in IHDR/IDAT/IEND.
    sources = []
    for scan in Scan.objects.filter(pk__in=glioma_slices | {nt.key_scan_id}):
        with scan.source.open("rb") as fh:
            frame = read_frames(fh.read())[scan.frame_index]
        sources.append(np.clip(np.asarray(frame.pixels, np.float32) * 255 + 0.5, 0, 255).astype(np.uint8))
    exported = []
    for path in _files(out):
        if path.suffix == ".png":
            assert re.fullmatch(r"[a-z]{16}\.png", path.name), path.name
            assert _chunks(path.read_bytes()) == ["IHDR", "IDAT", "IEND"]
            with Image.open(path) as im:
                assert im.mode == "L" and not im.info
                exported.append(np.asarray(im))
    assert len(exported) == 5
    for pixels in exported:  # each file is exactly one of the chosen slices
        assert sum(p.shape == pixels.shape and np.array_equal(p, pixels) for p in sources) == 1

    # Nothing that names the patient or the study, in any name or any byte.
    uids = set(Scan.objects.filter(study__in=[study, nt.study]).values_list("sop_instance_uid", flat=True)) - {""}
    hashes = set(Scan.objects.values_list("sha256", flat=True))
    forbidden = [*b.IDENTIFIERS, *uids, "1957", "2026", "P-100", b.PATIENT_ID, *(h[:12] for h in hashes)]
    for path in _files(out):
        rel = str(path.relative_to(out))
        data = path.read_bytes()
        for text in forbidden:
            assert text.lower() not in rel.lower(), (rel, text)
            assert text.encode().lower() not in data.lower(), (rel, text)
    for row in rows:  # the model version is the model's own (a hash); the rest holds no date, id or UID
        text = ",".join(row[k] for k in MANIFEST_FIELDS if k != "model_version")
        assert not re.search(r"\d", row["file"]), row["file"]
        assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{8}|\d+(\.\d+){3,}", text), text
    assert str(study.pk) not in {r["file"] for r in rows}

    event = AuditEvent.objects.get(action=AuditAction.EXPORT_CORRECTIONS)
    assert event.via == "command" and event.study_id is None and event.report_id is None
    assert event.detail == {"reports": 2, "slices": 5, "unreadable": 0, "n_glioma": 0, "n_meningioma": 4,
                            "n_notumor": 0, "n_pituitary": 1}


def test_the_export_refuses_a_folder_that_holds_something(tmp_path):
    (tmp_path / "x.txt").write_text("keep me")
    with pytest.raises(CommandError, match="empty folder"):
        call_command("export_corrections", "--since", "2026-01-01", str(tmp_path))
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("export_corrections", "--since", "01/03/2026", str(tmp_path / "new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT_CORRECTIONS).exists()


# Each corrected class gets one study of real slices of that class that the AI called another tumour.
WRONG_AI_LABEL = {"glioma": "meningioma", "meningioma": "pituitary", "notumor": "glioma", "pituitary": "glioma"}
PER_CLASS = 8


def test_the_export_round_trips_into_ml_train(tmp_path, staff_user, radiologist):
    for k, (truth, ai_label) in enumerate(WRONG_AI_LABEL.items()):
        report = b.ready_report(staff_user, PER_CLASS, labels=(ai_label,), mri_class=truth, seed=100,
                                patient_id=f"P-RT-{k}")
        _sign(report, radiologist, "disagree", truth)
    out, model = tmp_path / "corrections", tmp_path / "model"
    call_command("export_corrections", "--since", "2026-03-01", str(out), stdout=io.StringIO())
    assert {c: len(list((out / c).glob("*.png"))) for c in CLASSES} == {c: PER_CLASS for c in CLASSES}

    # The settings of tests/ml/test_train.py's smoke run, as the command a person would type.
    cmd = [sys.executable, "-m", "ml.train", "--data", str(out), "--out", str(model), "--arch", "cnn",
           "--epochs", "1", "--input-size", "64", "--batch-size", "8", "--val-fraction", "0.25",
           "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (model / "model.keras").is_file()
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["classes"] == list(CLASSES)
    assert meta["dataset"]["n_train"] + meta["dataset"]["n_validation"] == 4 * PER_CLASS
