"""``ml.evaluation.faithfulness_study.run_explain_evaluation``: the study behind ``ml.evaluate --explain``."""
from __future__ import annotations

import json

import numpy as np

from tests.ml.test_explain_cam import _slice, patch_model


def test_the_study_scores_every_method_and_keeps_the_mean_curves_per_predicted_class(tmp_path):
    from ml.evaluation.faithfulness_study import METHODS, run_explain_evaluation

    model, meta, positives = patch_model()
    folder = tmp_path / "patch"
    folder.mkdir()
    model.save(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps({**meta, "tta": "none"}))
    rng = np.random.default_rng(5)
    images = list(positives[:4]) + [_slice(rng, False) for _ in range(4)]
    labels = np.array([1] * 4 + [0] * 4)
    out = run_explain_evaluation(str(folder), (images, labels), tmp_path / "out", n=8, n_random=2,
                                 fractions=(0.05, 0.2, 0.5), examples=2)
    assert out["n"] == 8 and set(out["methods"]) == set(METHODS)
    assert (tmp_path / "out" / "explain.json").is_file() and (tmp_path / "out" / "explain_curves.png").is_file()
    curves = out["mean_deletion_curves_by_predicted_class"]
    predicted = {c["predicted"] for c in out["cases"]}
    for m in ("gradcam", "random"):
        assert set(curves[m]) == predicted
        for c in curves[m].values():
            assert len(c) == 4 and all(0.0 <= v <= 1.0 for v in c)
    # Both curves start at the unperturbed probability of the same cases.
    for name in predicted:
        assert abs(curves["gradcam"][name][0] - curves["random"][name][0]) < 1e-4
    # The patch decides "present": deleting where Grad-CAM points beats deleting at random there.
    present = [c for c in out["cases"] if c["predicted"] == "present"]
    assert present and np.mean([c["gradcam_deletion_auc"] < c["random_deletion_auc"] for c in present]) >= 0.75
