"""bfloat16 under the Keras JAX backend stays within ml.analysis.device.BF16_TOLERANCE
of float32: the shipped `cnn` on real dataset slices, one Analyzer of each in a child
process with ``KERAS_BACKEND=jax`` (a process has one Keras backend), on this CPU.

JAX comes with requirements-dev.txt (the GPU workers' backend): without it this test fails.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.labels import CLASSES
from tests import builders as b

ROOT = Path(__file__).resolve().parents[2]
NO_JAX = 77

CHILD = f"""
import json, os, sys
import numpy as np
try:
    import jax, keras
except ImportError:
    sys.exit({NO_JAX})
from ml.analysis.analyzer import Analyzer
from ml.model import registry

info = registry.get("cnn")
with np.load(sys.argv[1]) as f:
    images = [f[k] for k in sorted(f, key=int)]
out = {{}}
for flag in ("0", "1"):
    os.environ["BRAINAI_BF16"] = flag
    analyzer = Analyzer(registry.load_keras(info), info.metadata, name="cnn", warmup=False)
    results = analyzer.analyze(images, saliency=False, gradcam_pp=False, faithfulness=False, batch_size=8)
    out[flag] = {{"bf16": analyzer.bfloat16, "labels": [r.predicted_label for r in results],
                 "probs": [[r.probabilities[c] for c in analyzer.classes] for r in results],
                 "gradcam": [r.gradcam.tolist() for r in results]}}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from ml.io.read import read_frames

    data = [j for c in CLASSES for j in b.brain_jpegs(2, c, 40)]
    images = {str(i): read_frames(d)[0].pixels for i, d in enumerate(data)}     # sizes differ
    path = tmp_path_factory.mktemp("bf16") / "images.npz"
    np.savez(path, **images)
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    child = subprocess.run([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=900)
    if child.returncode == NO_JAX:
        pytest.fail("jax is not importable: requirements-dev.txt installs it; the JAX backend must be tested")
    assert child.returncode == 0, child.stderr[-4000:]
    return json.loads(child.stdout.strip().splitlines()[-1]), len(images)


def test_bfloat16_maps_and_probabilities_stay_within_the_stated_tolerance(runs):
    from ml.analysis.device import BF16_TOLERANCE

    out, n = runs
    f32, bf16 = out["0"], out["1"]
    assert n >= 4 and not f32["bf16"] and bf16["bf16"]
    assert bf16["labels"] == f32["labels"]
    probs = np.abs(np.array(bf16["probs"]) - np.array(f32["probs"])).max()
    cams = max(np.abs(np.array(a) - np.array(c)).max() for a, c in zip(bf16["gradcam"], f32["gradcam"]))
    assert probs <= BF16_TOLERANCE["probabilities"], probs
    assert cams <= BF16_TOLERANCE["gradcam"], cams
    assert cams > 0 or probs > 0  # bfloat16 did run: its rounding shows somewhere
