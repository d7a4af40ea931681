"""The faithfulness study behind ``python -m ml.evaluate --explain``.

On a seeded sample of images it measures, for Grad-CAM, Grad-CAM++, the seed's saliency
map and the raw guided-backprop magnitude, the deletion and insertion AUC
(:mod:`ml.explain.faithfulness`) against a random-map baseline (coarse random maps
confined to the head, the mean of ``n_random``), and how often each method beats it. It
also checks the cheap per-case score every analysis carries (3 deletion steps against 2
random maps) against the full deletion curve, and draws example overlays and the mean
curves.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ml.data.dataset import subsample
from ml.explain.faithfulness import (DeletionAUC, DeletionVsRandom, InsertionAUC,
                                     random_baseline_maps, resize_map)

FRACTIONS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0)
METHODS = ("gradcam", "gradcam_pp", "saliency", "guided_backprop_raw")
EARLY = 0.3   # the start of the curve, where the per-case check looks too


def read_cases(items) -> tuple[list[np.ndarray], np.ndarray]:
    """Images (H, W) in [0, 1] and their labels, from dataset items or an (images, labels) pair."""
    from ml.io.read import read_image

    if isinstance(items, tuple) and len(items) == 2 and not hasattr(items[0], "path"):
        images, labels = items                                   # (images, labels) arrays
        return [np.asarray(im, np.float32) for im in images], np.asarray(labels, int)
    return [read_image(it.path) for it in items], np.array([it.label for it in items])


def _bootstrap_ci(diff: np.ndarray, seed: int = 0, n_boot: int = 2000) -> list[float]:
    if len(diff) == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n_boot, len(diff)))].mean(1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]


def _summary(method_auc: np.ndarray, random_auc: np.ndarray, lower_is_better: bool,
             early: tuple[np.ndarray, np.ndarray], tumour: np.ndarray) -> dict:
    def wins(m, r):
        return (r - m) if lower_is_better else (m - r)

    diff = wins(method_auc, random_auc)
    early_diff = wins(*early)
    return {"mean_auc": round(float(method_auc.mean()), 4), "median_auc": round(float(np.median(method_auc)), 4),
            "mean_random_auc": round(float(random_auc.mean()), 4),
            "beats_random_fraction": round(float(np.mean(diff > 0)), 4),
            "mean_advantage": round(float(diff.mean()), 4), "advantage_95ci": _bootstrap_ci(diff),
            "beats_random_fraction_tumour_predictions": (round(float(np.mean(diff[tumour] > 0)), 4)
                                                         if tumour.any() else None),
            f"beats_random_fraction_first_{int(100 * EARLY)}pct": round(float(np.mean(early_diff > 0)), 4)}


def run_explain_evaluation(model_info, items, out_dir, n: int = 100, *, seed: int = 0,
                           fractions: Sequence[float] = FRACTIONS, n_random: int = 3,
                           batch_size: int = 32, examples: int = 4) -> dict:
    """Measure how faithful each explanation method is, against random maps.

    Args:
        model_info: a :class:`ml.model.registry.ModelInfo` (or a model name / folder path).
        items: ``ml.data.dataset.Item`` list (read from disk) or an ``(images, labels)`` tuple of
            (H, W) arrays in [0, 1] and class indices.
        out_dir: folder for ``explain.json``, ``explain_curves.png``, ``explain_examples.png``.
        n: sample size (a seeded random subset when there are more items).
        fractions: deletion/insertion steps.
        n_random: random maps per case for the baseline.

    Returns:
        A JSON-serialisable dict: per method the deletion and insertion summaries
        (mean AUC, fraction of cases beating random overall, on tumour predictions and
        on the first 30% of the curve, mean advantage with a bootstrap 95% interval),
        per-class deletion win rates, the cheap per-case check's agreement with the full
        curve, per-case AUCs, the sample, timings and the figure paths.
    """
    from ml.analysis.analyzer import Analyzer
    from ml.model.preprocess import prepare

    t0 = time.perf_counter()
    name = str(model_info.path) if hasattr(model_info, "path") else model_info
    analyzer = Analyzer.load(name)
    if isinstance(items, tuple):
        images, labels = read_cases(items)
        keep = subsample(list(range(len(images))), n, seed)
        images, labels = [images[i] for i in keep], labels[keep]
    else:
        images, labels = read_cases(subsample(list(items), n, seed))
    size = analyzer.size
    x = np.stack([prepare(im, size).x for im in images]) if images else np.zeros((0, size, size), np.float32)

    maps = {m: [] for m in METHODS}
    targets, probs = [], []
    for i in range(0, len(x), batch_size):
        out = analyzer.maps_for_inputs(x[i:i + batch_size], saliency=True)
        maps["gradcam"].extend(out["gradcam"])
        maps["gradcam_pp"].extend(out["gradcam_pp"])
        maps["saliency"].extend(out["saliency"])
        maps["guided_backprop_raw"].extend(np.abs(out["input_gradients"][..., 0]))
        targets.extend(out["classes"])
        probs.extend(out["probabilities"])
    targets = np.asarray(targets, int)
    coarse = np.asarray(maps["gradcam"][0]).shape if len(x) else (8, 8)
    rand = random_maps_per_case(x, coarse, n_random, seed)

    model_fn = analyzer.scored_probabilities          # with the flip for a flip model

    result: dict = {"n": int(len(x)), "fractions": list(fractions), "n_random": n_random,
                    "perturbation": {"deletion": "removed pixels imputed from kept neighbours (sigma S/16)",
                                     "insertion": "original pixels revealed on a blurred copy (sigma S/16)"},
                    "random_baseline": "coarse uniform random maps at the CAM grid, bilinear, confined to the head",
                    "explained_class": "the model's predicted class", "methods": {}}
    curves: dict = {}
    cases: dict[str, np.ndarray] = {}
    notumor = analyzer.classes.index("notumor") if "notumor" in analyzer.classes else -1
    tumour = targets != notumor                  # maps are shown for tumour findings
    for metric_cls, key, lower in ((DeletionAUC, "deletion", True), (InsertionAUC, "insertion", False)):
        metric = metric_cls(fractions)
        r_curves = random_curves(metric, x, rand, targets, model_fn, n_random)
        r_auc = auc_rows(r_curves.mean(1), fractions)
        r_early = auc_rows(r_curves.mean(1), fractions, EARLY)
        curves[(key, "random")] = r_curves.mean(1)
        cases.setdefault(f"random_{key}_auc", r_auc)
        for m in METHODS:
            c = metric.curves(x, [resize_map(mp, size) for mp in maps[m]], targets, model_fn)
            curves[(key, m)] = c
            a = auc_rows(c, fractions)
            cases[f"{m}_{key}_auc"] = a
            result["methods"].setdefault(m, {})[key] = _summary(
                a, r_auc, lower, (auc_rows(c, fractions, EARLY), r_early), tumour)
            if key == "deletion":
                per_class = {}
                for k, cname in enumerate(analyzer.classes):
                    sel = labels == k
                    if sel.any():
                        per_class[cname] = {"n": int(sel.sum()),
                                            "beats_random_fraction": round(float(np.mean(a[sel] < r_auc[sel])), 4)}
                result["methods"][m]["deletion_by_true_class"] = per_class
                if m == "gradcam":
                    full_wins = a < r_auc
    if len(x):
        base = np.asarray(probs)[np.arange(len(x)), targets]
        cheap = DeletionVsRandom()(x, maps["gradcam"], targets, model_fn)
        cheap_wins = np.array([c["beats_random"] for c in cheap])
        result["per_case_check"] = {
            "fractions": cheap[0]["fractions"], "n_random": 2,
            "beats_random_fraction": round(float(cheap_wins.mean()), 4),
            "agreement_with_full_deletion": round(float(np.mean(cheap_wins == full_wins)), 4),
            "mean_tta_probability_of_explained_class": round(float(base.mean()), 4)}
    result["mean_deletion_curves_by_predicted_class"] = _class_curves(curves, targets, analyzer.classes)
    result["accuracy_on_sample"] = round(float(np.mean(targets == labels)), 4) if len(x) else None
    result["cases"] = [{"true": analyzer.classes[int(labels[i])], "predicted": analyzer.classes[int(targets[i])],
                        **{k: round(float(v[i]), 4) for k, v in cases.items()}} for i in range(len(x))]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result["figures"] = _figures(out, curves, fractions, analyzer, images, labels, examples, seed)
    result["model"] = {"name": analyzer.name, "version": analyzer.version}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "explain.json").write_text(json.dumps(result, indent=1))
    return result


def _class_curves(curves: dict, targets: np.ndarray, classes) -> dict:
    """Mean deletion curve (p of the explained class at f = 0 and each step) of Grad-CAM and
    of the random maps, per predicted class: shows where a curve ends (the fully removed
    image) as well as how it falls."""
    out: dict = {}
    for m in ("gradcam", "random"):
        c = curves.get(("deletion", m))
        if c is None:
            continue
        out[m] = {name: [round(float(v), 4) for v in c[targets == k].mean(0)]
                  for k, name in enumerate(classes) if (targets == k).any()}
    return out


def random_maps_per_case(x: np.ndarray, grid: tuple[int, int], n_random: int, seed: int) -> list[np.ndarray]:
    """(R, S, S) random baseline maps per case, drawn on the CAM grid ``grid`` (seeded ``seed + 1``)."""
    return [random_baseline_maps(xi, grid, n_random, seed=seed + 1) for xi in x]


def random_curves(metric, x: np.ndarray, rand, targets: np.ndarray, model_fn, n_random: int) -> np.ndarray:
    """(N, R, K+1) curves of ``metric`` for each case's R random maps (:func:`random_maps_per_case`)."""
    if not len(x):
        return np.zeros((0, n_random, len(metric.fractions) + 1))
    return np.stack([metric.curves(np.repeat(x[i:i + 1], n_random, 0), rand[i],
                                   np.repeat(targets[i], n_random), model_fn) for i in range(len(x))])


def auc_rows(curves: np.ndarray, fractions, upto: float = 1.0) -> np.ndarray:
    """(N, K+1) curves -> (N,) normalised trapezoid area over the fractions <= upto."""
    fr = np.concatenate([[0.0], np.asarray(fractions, np.float64)])
    keep = fr <= upto + 1e-9
    fr, curves = fr[keep], curves[:, keep]
    return ((0.5 * (curves[:, 1:] + curves[:, :-1])) * np.diff(fr)).sum(1) / fr[-1]


def _figures(out: Path, curves: dict, fractions, analyzer, images, labels, examples: int, seed: int) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ml.explain.overlay import blend

    fr = [0.0, *fractions]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("deletion", "insertion")):
        for m in (*METHODS, "random"):
            c = curves.get((key, m))
            if c is not None and len(c):
                ax.plot(fr, c.mean(0), marker="o", ms=3, label=m, ls="--" if m == "random" else "-")
        ax.set_xlabel("fraction of pixels " + ("removed" if key == "deletion" else "revealed"))
        ax.set_ylabel("p(explained class), mean")
        ax.set_title(f"{key} ({'lower' if key == 'deletion' else 'higher'} area is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    curves_png = out / "explain_curves.png"
    fig.savefig(curves_png, dpi=100)
    plt.close(fig)

    # One example per true class where possible, first in sample order.
    picks = []
    for k in range(len(analyzer.classes)):
        idx = np.nonzero(labels == k)[0]
        if len(idx):
            picks.append(int(idx[0]))
    picks = picks[:examples]
    examples_png = out / "explain_examples.png"
    if picks:
        results = analyzer.analyze([images[i] for i in picks], saliency=True)
        fig, axes = plt.subplots(len(picks), 4, figsize=(12, 3 * len(picks)), squeeze=False)
        for row, (i, r) in enumerate(zip(picks, results)):
            img = images[i]
            panels = [(np.repeat(img[..., None], 3, -1), f"true {analyzer.classes[labels[i]]}"),
                      (blend(img, r.gradcam, cmap="jet"), f"Grad-CAM: {r.predicted_label} {r.confidence:.2f}"),
                      (blend(img, r.gradcam_pp, cmap="jet"), "Grad-CAM++"),
                      (blend(img, r.saliency, cmap="hot", alpha=0.8, alpha_by_value=True), "saliency")]
            for col, (pic, title) in enumerate(panels):
                axes[row, col].imshow(pic)
                axes[row, col].set_title(title, fontsize=9)
                axes[row, col].axis("off")
            f, peak = r.faithfulness or {}, r.region["peak"] or {}
            where = f"peak {peak.get('x', '?')}, {peak.get('y', '?')} ({peak.get('frame', '')} terms)"
            axes[row, 1].text(2, img.shape[0] - 4, f"{where}\ndeletion AUC {f.get('map_auc')} "
                              f"vs random {f.get('random_auc')}", color="white", fontsize=7, va="bottom")
        fig.tight_layout()
        fig.savefig(examples_png, dpi=90)
        plt.close(fig)
    return {"curves": str(curves_png), "examples": str(examples_png) if picks else None}
