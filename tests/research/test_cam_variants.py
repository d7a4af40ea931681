"""``research.cam_variants``: CAM methods at a chosen layer, scored against random maps."""
from __future__ import annotations

import numpy as np
import pytest

from tests.ml.test_explain_cam import SIZE, TARGET, patch_model


def _analyzer_and_inputs(n=6):
    from ml.analysis.analyzer import Analyzer
    from ml.model.preprocess import prepare

    model, meta, positives = patch_model()
    meta = {**meta, "classes": ["notumor", "present"], "tta": "none"}
    analyzer = Analyzer(model, meta, warmup=False)
    x = np.stack([prepare(img, SIZE).x for img in positives[:n]])
    return analyzer, x, np.ones(n, int)


def test_every_method_gets_per_case_aucs_and_win_rates_against_the_random_maps():
    from research.cam_variants import compare_cams

    analyzer, x, labels = _analyzer_and_inputs()
    out = compare_cams(analyzer, x, labels, layer="relu2", n_random=2)
    assert out["grid"] == [8, 8] and out["layer"] == "relu2"
    for m in ("gradcam", "gradcam_pp", "hirescam"):
        s = out["methods"][m]
        aucs = np.array(out["cases"][m])
        assert aucs.shape == (6,) and np.all((aucs >= 0) & (aucs <= 1))
        assert s["beats_random_fraction"] == pytest.approx(np.mean(aucs < np.array(out["cases"]["random"])), abs=1e-4)
        assert set(s["by_true_class"]) == {"present"}
    # The disc decides the class: deleting where any CAM points beats deleting at random.
    assert out["methods"]["gradcam"]["beats_random_fraction"] >= 0.5


def test_reused_random_aucs_are_taken_as_given_and_unknown_methods_are_refused():
    from research.cam_variants import compare_cams

    analyzer, x, labels = _analyzer_and_inputs(3)
    out = compare_cams(analyzer, x, labels, layer=TARGET, methods=("hirescam",), random_auc=[1.0, 0.0, 1.0])
    wins = np.array(out["cases"]["hirescam"]) < np.array([1.0, 0.0, 1.0])
    assert out["methods"]["hirescam"]["beats_random_fraction"] == pytest.approx(wins.mean(), abs=1e-4)
    assert not wins[1]
    with pytest.raises(ValueError, match="methods must be among"):
        compare_cams(analyzer, x, labels, layer=TARGET, methods=("scorecam",))


def test_the_removal_and_the_random_grid_can_be_chosen():
    from research.cam_variants import compare_cams

    analyzer, x, labels = _analyzer_and_inputs(3)
    out = compare_cams(analyzer, x, labels, layer=TARGET, methods=("gradcam",), n_random=1,
                       removal="constant", random_grid=4)
    assert out["removal"] == "constant" and out["random_grid"] == [4, 4] and out["grid"] == [8, 8]
    assert len(out["cases"]["random"]) == 3
