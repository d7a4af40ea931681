"""ml.Analyzer: one fused pass that agrees with the unfused reference computations."""
from __future__ import annotations

import json
import subprocess
import sys
from functools import lru_cache

import numpy as np
import pytest

from ml.io.frame import Frame
from tests.ml.test_explain_cam import patch_in_original, patch_model

CNN_SIZE = 64


@lru_cache(maxsize=None)
def cnn_analyzer():
    """A randomly initialised production architecture at 64 px (no training needed)."""
    import keras

    from ml.analysis.analyzer import Analyzer
    from ml.model.builders import build_cnn

    keras.utils.set_random_seed(3)
    model = build_cnn(CNN_SIZE, widths=(8, 16, 16, 32, 32))
    meta = {"name": "random-cnn", "arch": "cnn", "input_size": CNN_SIZE, "temperature": 1.7,
            "tta": "hflip", "target_layer": "block4_sepconv2_act", "feature_layer": "features"}
    return Analyzer(model, meta, version="test"), model


def _slices(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 80 + 8 * i, 96
        yy, xx = np.mgrid[0:h, 0:w]
        img = 0.5 * (((yy - h / 2) / (0.4 * h)) ** 2 + ((xx - w / 2) / (0.4 * w)) ** 2 < 1)
        img = img + 0.3 * rng.random((h, w)) * (img > 0)
        out.append(img.astype(np.float32))
    return out


def test_probabilities_agree_with_the_reference_forward_pass():
    from ml.model.calibration import softmax
    from ml.model.predict import logits_and_features_model, predict_logits_features
    from ml.model.preprocess import prepare

    analyzer, model = cnn_analyzer()
    images = _slices(5)
    results = analyzer.analyze(images, saliency=False, faithfulness=False)
    x = np.stack([prepare(im, CNN_SIZE).x for im in images])[..., None]
    logits, _ = predict_logits_features(logits_and_features_model(model, "features"), x)
    expected = softmax(logits, 1.7)
    got = np.array([[r.probabilities[c] for c in analyzer.classes] for r in results])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r.predicted_label for r in results] == [analyzer.classes[i] for i in expected.argmax(1)]


def test_fused_maps_agree_with_the_unfused_reference_methods():
    from ml.explain.base_cam import to_original
    from ml.explain.grad_cam import GradCAM
    from ml.explain.grad_cam_plusplus import GradCAMPlusPlus
    from ml.explain.guided_backprop import GuidedBackprop
    from ml.explain.saliency import saliency_map
    from ml.model.preprocess import prepare

    analyzer, model = cnn_analyzer()
    images = _slices(3, seed=1)
    results = analyzer.analyze(images)
    prepared = [prepare(im, CNN_SIZE) for im in images]
    x = np.stack([p.x for p in prepared])
    cams, _ = GradCAM(model, "block4_sepconv2_act")(x)
    pps, _ = GradCAMPlusPlus(model, "block4_sepconv2_act")(x)
    grads, _ = GuidedBackprop(model)(x)
    for i, r in enumerate(results):
        np.testing.assert_allclose(r.gradcam, to_original(cams[i], prepared[i]), atol=1e-4)
        np.testing.assert_allclose(r.gradcam_pp, to_original(pps[i], prepared[i]), atol=1e-4)
        np.testing.assert_allclose(r.saliency, to_original(saliency_map(grads[i]), prepared[i]), atol=1e-4)


def test_every_result_has_maps_on_the_original_a_region_faithfulness_and_timings():
    analyzer, _ = cnn_analyzer()
    images = _slices(2)
    results = analyzer.analyze(images)
    for img, r in zip(images, results):
        for heat in (r.gradcam, r.gradcam_pp, r.saliency):
            assert heat.shape == img.shape and np.isfinite(heat).all()
            assert 0.0 <= heat.min() and heat.max() <= 1.0
        assert set(r.probabilities) == set(analyzer.classes)
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert r.confidence == pytest.approx(max(r.probabilities.values()))
        assert r.region["frame"] == "image" and set(r.regions) == {"gradcam", "gradcam_pp", "saliency"}
        assert {"map_auc", "random_auc", "gain", "beats_random"} <= set(r.faithfulness)
        assert {"preprocess", "model", "maps", "saliency", "region", "faithfulness", "total"} <= set(r.timings)
        json.dumps({k: getattr(r, k) for k in ("label", "predicted_label", "probabilities", "confidence",
                    "in_distribution", "guard", "region", "regions", "faithfulness", "timings")})  # stored as JSON


def test_optional_outputs_can_be_switched_off():
    analyzer, _ = cnn_analyzer()
    r = analyzer.analyze(_slices(1), saliency=False, gradcam_pp=False, faithfulness=False)[0]
    assert r.saliency is None and r.gradcam_pp is None and r.faithfulness is None
    assert r.gradcam is not None


def test_dicom_orientation_from_frames_gives_anatomical_terms():
    analyzer, _ = cnn_analyzer()
    img = _slices(1)[0]
    axial = Frame(img, {"image_orientation_patient": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]})
    sagittal = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    r_frame, r_plain = analyzer.analyze([axial, img], saliency=False)
    r_given = analyzer.analyze([img], saliency=False, orientations=[sagittal])[0]
    assert r_frame.region["frame"] == "anatomical" and r_frame.region["peak"]["x"] in ("left", "right", "central")
    assert r_plain.region["frame"] == "image"
    assert r_given.region["frame"] == "anatomical" and "z" in r_given.region["peak"]


def test_batches_of_any_size_give_the_same_answer_as_one_by_one():
    analyzer, _ = cnn_analyzer()
    images = _slices(5, seed=2)
    together = analyzer.analyze(images, saliency=False, batch_size=2)
    for img, r in zip(images, together):
        alone = analyzer.analyze([img], saliency=False)[0]
        assert alone.probabilities == pytest.approx(r.probabilities, abs=1e-5)
        np.testing.assert_allclose(alone.gradcam, r.gradcam, atol=1e-4)


def test_the_guard_turns_a_rejected_image_into_not_brain_mri():
    from ml.analysis.analyzer import Analyzer
    from ml.guard.input_guard import InputGuard

    analyzer, model = cnn_analyzer()
    meta = dict(analyzer.metadata)
    d = 32  # a guard whose feature threshold nothing can meet
    meta["guard"] = InputGuard(np.zeros((4, d)), np.eye(d), 1e-12,
                               {"contrast": 0.0, "dark_fraction": 0.0, "edge_energy": 1e9,
                                "colourfulness": 1.0}).to_metadata()
    strict = Analyzer(model, meta, warmup=False)
    r = strict.analyze(_slices(1), saliency=False, faithfulness=False)[0]
    assert r.label == "not_brain_mri" and not r.in_distribution and r.guard["reasons"]
    assert r.predicted_label in strict.classes and r.gradcam is not None


def test_the_decision_patch_model_through_the_analyzer_peaks_inside_the_patch():
    from ml.analysis.analyzer import Analyzer

    model, meta, positives = patch_model()
    analyzer = Analyzer(model, meta, version="test")
    r0, r1, c0, c1 = patch_in_original()
    for r in analyzer.analyze(list(positives[:6]), saliency=False):
        assert r.label == "present"
        assert r0 <= r.region["peak"]["row"] < r1 and c0 <= r.region["peak"]["col"] < c1
        assert r.faithfulness["beats_random"]


def test_bad_input_is_refused_with_a_reason():
    analyzer, _ = cnn_analyzer()
    with pytest.raises(ValueError, match="2-D"):
        analyzer.analyze([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="NaN"):
        analyzer.analyze([np.full((32, 32), np.nan, np.float32)])
    with pytest.raises(ValueError, match="orientations"):
        analyzer.analyze(_slices(2), orientations=[None])
    assert analyzer.analyze([]) == []


def test_load_reads_the_registry_once_per_process_and_reports_name_and_version(tmp_path, monkeypatch):
    from ml.analysis.analyzer import Analyzer

    _, model = cnn_analyzer()
    folder = tmp_path / "tiny"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps(cnn_analyzer()[0].metadata))
    monkeypatch.setenv("BRAINAI_MODEL_DIR", str(tmp_path))
    first = Analyzer.load("tiny", warmup=False)
    assert Analyzer.load("tiny") is first
    assert first.name == "tiny" and len(first.version) == 12 and first.classes[0] == "glioma"


def test_import_ml_does_not_import_tensorflow():
    code = "import sys, ml, ml.explain, ml.explain.overlay; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_load_notices_new_weights_on_disk(tmp_path, monkeypatch):
    import os

    from ml.analysis.analyzer import Analyzer
    from ml.model.builders import build_cnn

    model = build_cnn(CNN_SIZE, widths=(8, 8, 8, 8, 8))
    folder = tmp_path / "swap"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps(cnn_analyzer()[0].metadata))
    monkeypatch.setenv("BRAINAI_MODEL_DIR", str(tmp_path))
    first = Analyzer.load("swap", warmup=False)
    model.get_layer("logits").bias.assign([1.0, 2.0, 3.0, 4.0])        # different weights
    model.save(folder / "model.keras")
    os.utime(folder / "model.keras", ns=(1, 2))                       # and a different mtime
    second = Analyzer.load("swap", warmup=False)
    assert second is not first and second.version != first.version


def test_the_faithfulness_check_can_run_later_on_chosen_slices_with_the_same_result():
    analyzer, _ = cnn_analyzer()
    images = _slices(3, seed=4)
    full = analyzer.analyze(images, saliency=False)
    later = analyzer.check_faithfulness([images[2], images[0]])
    assert later == [full[2].faithfulness, full[0].faithfulness]


def test_log_prob_score_is_the_contrastive_gradient():
    """d log p_c = sum_j p_j (d z_c - d z_j): the map explains c against the others."""
    import tensorflow as tf

    from ml.model.calibration import softmax
    from ml.explain.base_cam import explained_score

    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(3, 4)).astype(np.float32))
    cls = tf.constant([0, 2, 3])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        score = explained_score(logits, cls, "log_prob", temperature=1.5)
    grad = tape.gradient(score, logits).numpy()
    p = softmax(logits.numpy(), 1.5)
    expected = -p / 1.5
    expected[np.arange(3), cls.numpy()] += 1.0 / 1.5
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    with pytest.raises(ValueError, match="cam score"):
        explained_score(logits, cls, "softmax")


def test_fused_log_prob_maps_agree_with_the_unfused_reference():
    from ml.analysis.analyzer import Analyzer
    from ml.explain.base_cam import to_original
    from ml.explain.grad_cam import GradCAM
    from ml.explain.grad_cam_plusplus import GradCAMPlusPlus
    from ml.model.preprocess import prepare

    base, model = cnn_analyzer()
    meta = {**base.metadata, "cam_score": "log_prob"}
    analyzer = Analyzer(model, meta, version="test", warmup=False)
    images = _slices(3, seed=2)
    results = analyzer.analyze(images, faithfulness=False)
    prepared = [prepare(im, CNN_SIZE) for im in images]
    x = np.stack([p.x for p in prepared])
    cams, _ = GradCAM.from_metadata(model, meta)(x)
    pps, _ = GradCAMPlusPlus.from_metadata(model, meta)(x)
    logit_cams, _ = GradCAM(model, "block4_sepconv2_act")(x)
    for i, r in enumerate(results):
        np.testing.assert_allclose(r.gradcam, to_original(cams[i], prepared[i]), atol=1e-4)
        np.testing.assert_allclose(r.gradcam_pp, to_original(pps[i], prepared[i]), atol=1e-4)
    assert not np.allclose(cams, logit_cams, atol=1e-3)      # a different map, not a relabel


@pytest.mark.parametrize("size,tta,want", [(160, True, 32), (160, False, 64), (299, True, 9), (299, False, 18)])
def test_the_batch_cap_counts_the_pixels_the_graph_sees_mirrors_included(size, tta, want, monkeypatch):
    from types import SimpleNamespace

    from ml.analysis.analyzer import Analyzer

    monkeypatch.delenv("BRAINAI_MAX_BATCH_PIXELS", raising=False)
    fake = SimpleNamespace(size=size, tta=tta)
    assert Analyzer._batch_cap(fake, 1000) == want
    assert Analyzer._batch_cap(fake, 4) == 4
    monkeypatch.setenv("BRAINAI_MAX_BATCH_PIXELS", str(10 * size * size))
    assert Analyzer._batch_cap(fake, 1000) == (5 if tta else 10)


def test_the_faithfulness_metric_scores_the_prediction_the_product_makes():
    from ml.analysis.analyzer import Analyzer
    from ml.model.preprocess import prepare
    from tests.ml.test_explain_cam import SIZE

    model, meta, positives = patch_model()               # a trained flip model
    analyzer = Analyzer(model, meta, version="test", warmup=False)
    x = np.stack([prepare(s, SIZE).x for s in positives[:3]])[..., None]
    merged = analyzer.maps_for_inputs(x, saliency=False)["probabilities"]
    np.testing.assert_allclose(analyzer.scored_probabilities(x), merged, atol=1e-5)
    plain = analyzer.probabilities(analyzer.graph.forward(x))
    assert not np.allclose(plain, merged, atol=1e-4)      # the mirror counts
    no_flip = Analyzer(model, {**meta, "tta": "none"}, version="test", warmup=False)
    np.testing.assert_allclose(no_flip.scored_probabilities(x), plain, atol=1e-5)
