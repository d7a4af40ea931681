"""Fixtures and seeding for the portal tests (and bench/pages.py). No tests in here.

Studies are made the way production makes them, through scans.services: a real MRI
JPEG from the shared dataset goes through ``register_upload``; the model's output for
each slice is handed to ``record_analyses`` as the worker would (a plain record with the
SliceResult attributes, so TensorFlow never loads); then ``complete_analysis``,
``record_explanation`` and ``finalize_report``. Images come from ml.explain.overlay.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from ml.explain.overlay import render_heatmap_png, render_overlay_png
from ml.imageio import read_frames
from scans import services
from scans.models import Report, Scan, ScanStatus, Study
from scans.services.analysis import ScanResult

DATASET = Path(settings.BASE_DIR).parent / "shared" / "datasets" / "brain-tumor-mri" / "Training"
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def mri_jpegs(cls: str = "glioma", n: int = 1, start: int = 0) -> list[Path]:
    """``n`` JPEGs of one class of the shared dataset, from the ``start``-th (read in place, never copied).

    Two uploads of the same file are one scan (content is unique), so seeds that need
    distinct studies take distinct ``start`` values.
    """
    folder = DATASET / cls
    if not folder.is_dir():
        pytest.skip(f"the shared dataset is not at {folder}")
    return sorted(folder.glob("*.jpg"))[start:start + n]


@dataclass
class SliceRecord:
    """What the worker hands to record_analyses for one slice (ml.analyzer.SliceResult's fields)."""

    label: str
    probabilities: dict
    confidence: float
    in_distribution: bool = True
    guard: dict = field(default_factory=dict)
    region: dict = field(default_factory=dict)
    faithfulness: dict | None = None
    timings: dict = field(default_factory=dict)


def slice_record(label: str = "glioma", confidence: float = 0.93, *, in_distribution: bool = True) -> SliceRecord:
    """Calibrated-looking probabilities with ``confidence`` on ``label`` (the rest shared out)."""
    top = label if label in CLASSES else "notumor"
    rest = [c for c in CLASSES if c != top]
    probs = {c: round((1 - confidence) * w, 4) for c, w in zip(rest, (0.6, 0.3, 0.1))}
    probs[top] = round(confidence, 4)
    region = {"peak": {"x": "left", "y": "upper", "frame": "image", "text": "left of the image, upper"},
              "midline": False, "sellar": False, "depth": "deep", "hot_area_fraction": 0.06,
              "hot_spots": 1, "frame": "image"}
    return SliceRecord(label=label, probabilities=probs, confidence=confidence,
                       in_distribution=in_distribution, region=region,
                       guard={"score": 0.1 if in_distribution else 0.9}, timings={"model": 0.01})


class _Named(io.BytesIO):
    def __init__(self, path: Path):
        super().__init__(path.read_bytes())
        self.name = path.name


def upload_study(user, paths, *, patient_id="BRN-0042", patient_name="Ada Lovelace",
                 description="MRI brain T1 post-contrast") -> Study:
    result = services.register_upload(user, [_Named(p) for p in paths], {
        "patient_id": patient_id, "patient_name": patient_name, "study_description": description,
    })
    assert result.studies, result.rejected
    return result.studies[0]


def _maps(scan: Scan) -> tuple[bytes, bytes, bytes]:
    """Grad-CAM heatmap, overlay and saliency PNGs for a scan, drawn on its own pixels."""
    with scan.source.open("rb") as fh:
        frame = read_frames(fh.read())[0]
    image = np.asarray(frame.pixels, np.float32)
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    heat = np.exp(-(((yy - 0.4 * h) / (0.15 * h)) ** 2 + ((xx - 0.35 * w) / (0.15 * w)) ** 2)).astype(np.float32)
    saliency = np.clip(heat * np.abs(np.gradient(image)[0]) * 8, 0, 1).astype(np.float32)
    return (render_heatmap_png(heat), render_overlay_png(image, heat),
            render_overlay_png(image, saliency, cmap="hot"))


def analyse(study: Study, records=None) -> Report:
    """Store a result for every pending scan, then finish the study as the workers would."""
    scans = list(study.scans.filter(status=ScanStatus.PENDING).order_by("id"))
    records = records or [slice_record() for _ in scans]
    results = [ScanResult(s.pk, r, *_maps(s)) for s, r in zip(scans, records)]
    services.record_analyses(results, model_name="brainai-cnn", model_version="2026.11-test")
    report = services.complete_analysis(study.pk)
    explanation = SimpleNamespace(
        text="The model's attention concentrates in the left upper part of the image, consistent with "
             "its glioma finding. This is decision support, not a diagnosis.",
        provider="template", model="template-v1", prompt_version="1", latency_ms=3,
        fallback_reason=None, attempts=0)
    services.record_explanation(report.pk, explanation)
    services.finalize_report(report.pk)
    return Report.objects.get(pk=report.pk)


def seed_report(user, *, n: int = 1, cls: str = "glioma", start: int = 0, records=None, **upload_fields) -> Report:
    return analyse(upload_study(user, mri_jpegs(cls, n, start), **upload_fields), records)


def make_user(django_user_model, username: str, *groups: str, **extra):
    """A user with the tests' password convention ("pw-<username>") in the given groups."""
    user = django_user_model.objects.create_user(username, password=f"pw-{username}", first_name=username.title(), **extra)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


# --- fixtures (users come from tests/conftest.py: staff_user, radiologist, clinic_admin, outsider) ---

@pytest.fixture
def report(staff_user) -> Report:
    """One glioma slice, analysed and explained: awaiting review."""
    return seed_report(staff_user)


@pytest.fixture
def signed_report(report, radiologist) -> Report:
    services.update_review(report, radiologist, "Enhancing mass, left frontal.", "Likely high-grade glioma.")
    return services.sign_report(report, radiologist)


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def radiologist_client(client, radiologist):
    client.force_login(radiologist)
    return client
