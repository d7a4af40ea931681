"""A model's version names everything that changes an answer (ml.model.registry).

The weights, every metadata field that changes an output, and a borrowed guard's lender;
a running process reloads when any of them changes on disk.
"""
from __future__ import annotations

import json
import os

import pytest

from ml.model import registry
from tests.ml.test_analyzer import CNN_SIZE, cnn_analyzer

BASE = {"name": "m", "arch": "cnn", "input_size": 160, "classes": ["glioma", "meningioma", "notumor", "pituitary"],
        "temperature": 0.7, "tta": "hflip", "target_layer": "block4_sepconv2_act", "feature_layer": "features",
        "guard": {"method": "mahalanobis-tied", "threshold": 3.0}, "cam_score": "logit",
        "validation": {"accuracy": 0.98}, "training": {"epochs": 3}, "seed": 1}


def _folder(root, name: str, metadata: dict, weights: bytes = b"weights") -> registry.ModelInfo:
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "model.keras").write_bytes(weights)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return registry.get(str(folder))


@pytest.mark.parametrize("field, value", [
    ("temperature", 0.9), ("tta", "none"), ("guard", {"method": "mahalanobis-tied", "threshold": 2.5}),
    ("classes", ["a", "b", "c", "d"]), ("input_size", 299), ("target_layer", "block3_sepconv2_act"),
    ("cam_score", "log_prob"), ("guard_model", "cnn"), ("a_field_added_later", 1),
])
def test_a_field_that_changes_an_answer_changes_the_version(tmp_path, field, value):
    before = _folder(tmp_path, "a", BASE).version
    changed = _folder(tmp_path, "b", {**BASE, field: value}).version
    assert len(changed) == 12 and changed != before


@pytest.mark.parametrize("field, value", [("validation", {"accuracy": 0.5}), ("training", {"epochs": 9}),
                                          ("seed", 7), ("name", "renamed"), ("recalibrated", [{"when": "now"}])])
def test_a_descriptive_field_leaves_the_version_alone(tmp_path, field, value):
    assert _folder(tmp_path, "a", BASE).version == _folder(tmp_path, "b", {**BASE, field: value}).version


def test_new_weights_change_the_version(tmp_path):
    assert _folder(tmp_path, "a", BASE).version != _folder(tmp_path, "b", BASE, weights=b"other").version


def test_a_borrower_changes_version_when_its_lender_does(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINAI_MODEL_DIR", str(tmp_path))
    _folder(tmp_path, "lender", BASE)
    borrower = {**{k: v for k, v in BASE.items() if k != "guard"}, "guard_model": "lender"}
    before = _folder(tmp_path, "borrower", borrower).version
    _folder(tmp_path, "lender", {**BASE, "guard": {"method": "mahalanobis-tied", "threshold": 9.0}})
    assert registry.get("borrower").version != before
    assert registry.get("lender").metadata_file in registry.get("borrower").watched_files()


def test_the_shipped_models_name_a_version_over_weights_and_metadata():
    for name in registry.available_models():
        info = registry.get(name)
        assert len(info.version) == 12 and info.version != info.sha256[:12], name


def test_a_running_analyzer_reloads_when_only_the_metadata_changes(tmp_path, monkeypatch):
    from ml.analysis.analyzer import Analyzer

    analyzer, model = cnn_analyzer()
    folder = tmp_path / "recal"
    folder.mkdir()
    model.save(folder / "model.keras")
    meta = dict(analyzer.metadata)
    (folder / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setenv("BRAINAI_MODEL_DIR", str(tmp_path))
    first = Analyzer.load("recal", warmup=False)
    assert Analyzer.load("recal", warmup=False) is first

    # What ml.recalibrate does: a new temperature in metadata.json, same weights.
    (folder / "metadata.json").write_text(json.dumps({**meta, "temperature": meta["temperature"] * 2}))
    os.utime(folder / "metadata.json", ns=(1, 2))
    second = Analyzer.load("recal", warmup=False)
    assert second is not first and second.version != first.version
    assert second.metadata["temperature"] == pytest.approx(meta["temperature"] * 2)
    assert second.size == first.size == CNN_SIZE
