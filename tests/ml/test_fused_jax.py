"""The fused analysis under the Keras JAX backend agrees with the TensorFlow one.

The JAX side runs in a child process with ``KERAS_BACKEND=jax`` (a process has one Keras
backend); this process computes the TensorFlow side on the same saved model and inputs.
JAX comes with requirements-dev.txt (the GPU workers' backend): without it these tests fail.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SIZE = 64
NO_JAX = 77  # the child's exit status when jax (or the Keras JAX backend) cannot be imported
META = {"name": "random-cnn", "arch": "cnn", "input_size": SIZE, "temperature": 1.7, "tta": "hflip",
        "target_layer": "block4_sepconv2_act", "feature_layer": "features"}
RUNS = {  # name -> (cam_score, targets, saliency)
    "predicted": ("logit", None, True),
    "targets": ("logit", [1, -1, 3], False),
    "log_prob": ("log_prob", None, True),
}

CHILD = f"""
import json, sys
import numpy as np
try:
    import jax, keras
except ImportError:
    sys.exit({NO_JAX})
import ml.analysis.analyzer, ml.explain.fused_jax
tf_imported = "tensorflow" in sys.modules
from ml.analysis.analyzer import Analyzer, fused_graph_class
from ml.explain.fused_jax import FusedGraphJax

folder = sys.argv[1]
runs, meta = json.loads(sys.argv[2]), json.loads(sys.argv[3])
model = keras.models.load_model(folder + "/model.keras", compile=False)
x = np.load(folder + "/inputs.npz")["x"]
out = {{}}
for name, (score, targets, saliency) in runs.items():
    graph = FusedGraphJax(model, meta["target_layer"], meta["feature_layer"], cam_score=score,
                          temperature=meta["temperature"])
    out.update({{f"{{name}}/{{k}}": v for k, v in graph(x, targets, saliency=saliency).items()}})
out["forward"] = graph.forward(x, batch_size=2)
analyzer = Analyzer(model, meta, warmup=False)
results = analyzer.analyze(list(x[..., 0]), saliency=True, faithfulness=True)
out["analyzer/probabilities"] = np.array([[r.probabilities[c] for c in analyzer.classes] for r in results])
np.savez(folder + "/jax.npz", **out)
print(json.dumps({{"backend": keras.backend.backend(), "tensorflow_imported": tf_imported,
                  "graph_class": fused_graph_class().__name__,
                  "faithfulness": [r.faithfulness is not None for r in results]}}))
"""


def both_backends(folder: str) -> tuple[dict, dict, dict]:
    """(TensorFlow outputs, JAX outputs, the child's report) on one random model and batch."""
    import keras

    from ml.explain.fused import FusedGraph
    from ml.model.builders import build_cnn

    keras.utils.set_random_seed(5)
    model = build_cnn(SIZE)
    x = np.random.default_rng(0).random((3, SIZE, SIZE, 1)).astype(np.float32)
    model.save(f"{folder}/model.keras")
    np.savez(f"{folder}/inputs.npz", x=x)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    child = subprocess.run([sys.executable, "-c", CHILD, folder, json.dumps(RUNS), json.dumps(META)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if child.returncode == NO_JAX:
        pytest.fail("jax is not importable: requirements-dev.txt installs it; the JAX backend must be tested")
    assert child.returncode == 0, child.stderr[-4000:]
    tf_out = {}
    for name, (score, targets, saliency) in RUNS.items():
        graph = FusedGraph(model, META["target_layer"], META["feature_layer"], cam_score=score,
                           temperature=META["temperature"])
        tf_out.update({f"{name}/{k}": v for k, v in graph(x, targets, saliency=saliency).items()})
    tf_out["forward"] = graph.forward(x, batch_size=2)
    tf_out["analyzer/probabilities"] = _probabilities(model, x)
    with np.load(f"{folder}/jax.npz") as f:
        jax_out = dict(f)
    return tf_out, jax_out, json.loads(child.stdout.strip().splitlines()[-1])


def _probabilities(model, x: np.ndarray) -> np.ndarray:
    from ml.analysis.analyzer import Analyzer

    analyzer = Analyzer(model, META, warmup=False)
    results = analyzer.analyze(list(x[..., 0]), saliency=True, faithfulness=True)
    return np.array([[r.probabilities[c] for c in analyzer.classes] for r in results])


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return both_backends(str(tmp_path_factory.mktemp("fused_jax")))


def _close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    scale = float(np.abs(a).max()) or 1.0
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5 * scale, err_msg=what)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_jax_gives_the_same_logits_features_and_classes(outputs, run):
    tf_out, jax_out, _ = outputs
    for key in ("logits", "logits_plain", "features"):
        _close(tf_out[f"{run}/{key}"], jax_out[f"{run}/{key}"], f"{run}/{key}")
    np.testing.assert_array_equal(jax_out[f"{run}/classes"], tf_out[f"{run}/classes"])


@pytest.mark.parametrize("run", sorted(RUNS))
def test_jax_gives_the_same_gradcam_and_gradcam_pp_maps(outputs, run):
    tf_out, jax_out, _ = outputs
    for key in ("gradcam", "gradcam_pp"):
        assert jax_out[f"{run}/{key}"].shape == tf_out[f"{run}/{key}"].shape == (3, SIZE // 16, SIZE // 16)
        _close(tf_out[f"{run}/{key}"], jax_out[f"{run}/{key}"], f"{run}/{key}")


def test_jax_gives_the_same_guided_backprop_gradients(outputs):
    tf_out, jax_out, _ = outputs
    for run in ("predicted", "log_prob"):
        _close(tf_out[f"{run}/input_gradients"], jax_out[f"{run}/input_gradients"], run)
    assert "targets/input_gradients" not in jax_out                  # saliency=False


def test_the_requested_targets_are_explained(outputs):
    _, jax_out, _ = outputs
    assert jax_out["targets/classes"][0] == 1 and jax_out["targets/classes"][2] == 3


def test_jax_forward_gives_the_plain_logits(outputs):
    tf_out, jax_out, _ = outputs
    _close(tf_out["forward"], jax_out["forward"], "forward")


def test_the_analyzer_runs_on_jax_without_importing_tensorflow(outputs):
    tf_out, jax_out, report = outputs
    assert report["backend"] == "jax" and report["graph_class"] == "FusedGraphJax"
    assert report["tensorflow_imported"] is False
    assert all(report["faithfulness"])
    np.testing.assert_allclose(jax_out["analyzer/probabilities"], tf_out["analyzer/probabilities"], atol=1e-5)


def test_padded_size_is_the_next_power_of_two():
    from ml.explain.fused_jax import padded_size

    assert [padded_size(n) for n in (0, 1, 2, 3, 8, 9, 32, 33)] == [1, 1, 2, 4, 8, 16, 32, 64]
