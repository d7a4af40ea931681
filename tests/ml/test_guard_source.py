"""ml.guard.source: a model may borrow another shipped model's input guard."""
import json

import numpy as np
import pytest

from ml.model import registry
from ml.guard.source import for_metadata


def test_a_model_with_its_own_guard_reads_its_own_features():
    source = for_metadata(registry.get("cnn").metadata, "cnn")
    assert source.owner == "cnn" and not source.borrowed


def test_a_model_without_a_guard_has_none():
    assert for_metadata({"name": "bare"}) is None


def test_a_borrowed_guard_runs_the_lenders_model_and_rejects_a_blank_page():
    source = for_metadata({"guard_model": "cnn"}, "borrower")
    assert source.borrowed and source.owner == "cnn" and source.size == registry.get("cnn").metadata["input_size"]
    blank = np.full((300, 240), 0.97, np.float32)
    slice_ = np.zeros((256, 256), np.float32)
    yy, xx = np.mgrid[:256, :256]
    slice_[(yy - 128) ** 2 / 100 ** 2 + (xx - 128) ** 2 / 80 ** 2 < 1] = 0.6
    x, logits, feats = source.features([blank, slice_])
    assert x.shape == (2, source.size, source.size) and logits.shape == (2, 4) and feats.shape[0] == 2
    verdict = source.guard.assess(blank, x[0], feats[0])
    assert not verdict.in_distribution and verdict.reasons


def test_xception_borrows_cnns_guard():
    assert "xception" in registry.available_models(), "xception ships in ml/weights/xception"
    meta = registry.get("xception").metadata
    assert meta["guard_model"] == "cnn" and "guard" not in meta
    assert meta["guard_evaluation"]["borrowed_from"]["name"] == "cnn"


def test_a_lender_without_a_guard_is_refused(tmp_path, monkeypatch):
    from ml.model.builders import build_cnn

    folder = tmp_path / "noguard"
    folder.mkdir()
    build_cnn(64).save(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps({"name": "noguard", "arch": "cnn", "input_size": 64,
                                                      "feature_layer": "features"}))
    monkeypatch.setenv("BRAINAI_MODEL_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="no guard of its own"):
        for_metadata({"guard_model": "noguard"}, "borrower")
