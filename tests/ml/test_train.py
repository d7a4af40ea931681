"""ml.training.train end to end on a tiny folder: it trains, calibrates, fits the guard and saves."""
import json

import numpy as np
import pytest

from ml.data import dataset as mldata
from ml.labels import CLASSES
from ml.model.builders import build_cnn
from ml.training.train import main as train_main
from tests.ml.folders import write_class_folder


def test_every_layer_has_a_name_and_the_cnn_is_compact():
    model = build_cnn(128)
    assert model.count_params() < 2_000_000
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))
    assert "block4_sepconv2_act" in names and "features" in names and "logits" in names


def test_the_builder_says_what_it_received():
    with pytest.raises(ValueError, match="received: 100"):
        build_cnn(100)


def test_the_split_never_puts_identical_files_on_both_sides(tmp_path):
    items = [mldata.Item(f"{i}.png", i % 4, f"h{i // 2}") for i in range(200)]  # pairs share hashes
    tr, va = mldata.grouped_split(items, 0.2, seed=3)
    assert not {items[i].sha256 for i in tr} & {items[i].sha256 for i in va}
    counts = np.bincount([items[i].label for i in va], minlength=4)
    assert counts.min() >= 8                                  # stratified


def test_train_writes_model_metadata_and_curves_and_reads_a_synthetic_folder(tmp_path):
    real, synth, out = tmp_path / "real", tmp_path / "synth", tmp_path / "out"
    write_class_folder(real, 10, seed=0)
    write_class_folder(synth, 5, seed=1)
    rc = train_main(["--data", str(real), "--out", str(out), "--epochs", "2", "--input-size", "64",
                     "--batch-size", "8", "--val-fraction", "0.25", "--cache-dir", str(tmp_path / "c"),
                     "--synthetic", str(synth), "--synthetic-ratio", "0.5"])
    assert rc == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert (out / "model.keras").is_file() and (out / "training_curves.png").is_file()
    assert meta["classes"] == list(CLASSES) and meta["input_size"] == 64
    assert meta["temperature"] > 0
    assert meta["dataset"]["n_train"] + meta["dataset"]["n_validation"] == 40
    assert meta["training"]["args"]["synthetic_ratio"] == 0.5
    assert meta["training"]["n_synthetic"] == round(0.5 * meta["dataset"]["n_train"])
    for key in ("manifest_sha256", "n_validation"):
        assert key in meta["dataset"]
    for key in ("means", "precision", "maha_threshold", "stat_bounds"):
        assert key in meta["guard"]


def test_xception_has_the_seed_head_and_a_grey_input():
    from ml.model.builders import build_xception

    model = build_xception(96)
    names = [layer.name for layer in model.layers]
    assert \
        names[-5:] == ["head_gmp", "head_dropout1", "head_dense", "head_dropout2", "logits"]
    assert model.input_shape == (None, 96, 96, 1)
    assert model.get_layer("head_dense").units == 128
    assert model.get_layer("head_dropout1").rate == 0.3 and model.get_layer("head_dropout2").rate == 0.25
    assert model.output_shape == (None, 4)


def test_fit_only_then_finalize_only_with_removals_records_the_run(tmp_path):
    real, out, tuned = tmp_path / "real", tmp_path / "out", tmp_path / "tuned"
    write_class_folder(real, 10, seed=0)
    common = ["--data", str(real), "--input-size", "64", "--batch-size", "8",
              "--val-fraction", "0.25", "--cache-dir", str(tmp_path / "c")]
    assert train_main(common + ["--out", str(out), "--epochs", "1", "--deletion-rate", "0.5", "--fit-only"]) == 0
    assert (out / "model.keras").is_file() and not (out / "metadata.json").exists()   # not finalized
    fit = json.loads((out / "fit.json").read_text())
    assert train_main(common + ["--out", str(out), "--finalize-only"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["seconds"] == pytest.approx(fit["seconds"], abs=0.1) and meta["temperature"] > 0
    start = str(out / "model.keras")
    assert train_main(common + ["--out", str(tuned), "--epochs", "1", "--deletion-rate", "0.5",
                                "--init-from", start]) == 0
    args = json.loads((tuned / "metadata.json").read_text())["training"]["args"]
    assert args["deletion_rate"] == 0.5 and args["init_from"] == start
    import hashlib
    assert args["init_from_version"] == hashlib.sha256(open(start, "rb").read()).hexdigest()[:12]
