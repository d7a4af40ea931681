"""Deletion / insertion metrics as plain callables over (inputs, maps, targets, model).

The model here is arithmetic, not a network: its class-1 probability rises with the
brightness of a known patch, so which map is faithful is known exactly.
"""
from __future__ import annotations

import numpy as np
import pytest

from ml.explain.faithfulness import (DeletionAUC, DeletionVsRandom, InsertionAUC, perturbations,
                                     pixel_order)

S = 32
PATCH = (slice(8, 16), slice(8, 16))


def patch_model(x: np.ndarray) -> np.ndarray:
    """(M, S, S, 1) -> (M, 2) probabilities; p(class 1) = sigmoid(20 * (patch mean - 0.75))."""
    mean = x[:, PATCH[0], PATCH[1], 0].mean(axis=(1, 2))
    p1 = 1.0 / (1.0 + np.exp(-20.0 * (mean - 0.75)))
    return np.stack([1 - p1, p1], axis=1)


def _inputs(n=3):
    x = np.full((n, S, S), 0.4, np.float32)
    x[:, PATCH[0], PATCH[1]] = 1.0
    good = np.zeros((n, S, S), np.float32)
    good[:, PATCH[0], PATCH[1]] = 1.0
    bad = np.zeros((n, S, S), np.float32)
    bad[:, 20:28, 20:28] = 1.0
    return x, good, bad, np.ones(n, int)


def test_deleting_what_a_faithful_map_points_at_lowers_the_score_faster():
    x, good, bad, t = _inputs()
    deletion = DeletionAUC(fractions=(0.05, 0.1, 0.2))
    assert (deletion(x, good, t, patch_model) < deletion(x, bad, t, patch_model) - 0.2).all()


def test_revealing_what_a_faithful_map_points_at_raises_the_score_faster():
    x, good, bad, t = _inputs()
    insertion = InsertionAUC(fractions=(0.05, 0.1, 0.2))
    assert (insertion(x, good, t, patch_model) > insertion(x, bad, t, patch_model) + 0.2).all()


def test_the_curve_starts_at_the_unperturbed_score_and_runs_one_model_call():
    x, good, _, t = _inputs(2)
    calls = []

    def counting(batch):
        calls.append(len(batch))
        return patch_model(batch)

    curves = DeletionAUC(fractions=(0.1, 0.3)).curves(x, good, t, counting)
    assert curves.shape == (2, 3) and calls == [2 * 2 + 2]
    np.testing.assert_allclose(curves[:, 0], patch_model(x[..., None])[:, 1], rtol=1e-6)


def test_per_case_check_against_random_maps_flags_a_map_no_better_than_random():
    x, good, bad, t = _inputs()
    check = DeletionVsRandom(fractions=(0.05, 0.1, 0.2), n_random=2)
    for case in check(x, good, t, patch_model):
        assert case["beats_random"] and case["gain"] > 0 and 0 < case["score"] <= 1
    for case in check(x, bad, t, patch_model):
        assert not case["beats_random"] and case["score"] == 0.0


def test_coarse_maps_are_resized_to_the_input_grid():
    x, _, _, t = _inputs(1)
    coarse = np.zeros((1, 4, 4), np.float32)
    coarse[0, 1, 1] = 1.0                                   # the cell over the patch
    assert DeletionVsRandom(fractions=(0.05, 0.1))(x, coarse, t, patch_model)[0]["beats_random"]


def test_pixel_order_breaks_ties_at_random_not_in_raster_order():
    flat = np.zeros((16, 16))
    first = pixel_order(flat, top=0.25)
    assert len(first) == 64 and len({i // 16 for i in first}) > 8   # spread over many rows
    ramp = np.arange(256.0).reshape(16, 16)
    assert pixel_order(ramp, top=0.1).tolist() == list(range(255, 229, -1))


def test_deletion_refills_the_top_fraction_from_the_pixels_around_it():
    x = np.zeros((S, S), np.float32)
    x[PATCH] = 1.0
    m = x.copy()
    deleted = perturbations(x, m, (64 / S ** 2,), "deletion")[0]
    assert deleted[PATCH].max() < 0.05 and np.array_equal(deleted[20:, 20:], x[20:, 20:])


def test_fractions_must_be_increasing_and_within_the_unit_interval():
    with pytest.raises(ValueError, match="increasing"):
        DeletionAUC(fractions=(0.3, 0.1))
    with pytest.raises(ValueError, match="n_random"):
        DeletionVsRandom(n_random=0)


@pytest.mark.parametrize("removal", ["impute", "blur", "constant"])
def test_every_removal_replaces_only_the_top_pixels_and_a_faithful_map_still_wins(removal):
    x, good, bad, t = _inputs()
    deleted = perturbations(x[0], good[0], (64 / S ** 2,), "deletion", removal)[0]
    outside = np.ones((S, S), bool)
    outside[PATCH] = False
    assert np.array_equal(deleted[outside], x[0][outside])
    assert deleted[PATCH].mean() < 0.9                        # the bright patch is dimmed (blur) or gone
    deletion = DeletionAUC(fractions=(0.05, 0.1, 0.2), removal=removal)
    assert (deletion(x, good, t, patch_model) < deletion(x, bad, t, patch_model)).all()


def test_an_unknown_removal_is_refused():
    with pytest.raises(ValueError, match="removal must be one of"):
        DeletionAUC(removal="zeros")
