"""``python -m research.cam_variants``: which CAM, on which layer, explaining which score?

The study behind ``ml.evaluate --explain`` measures the maps the product ships. This
one answers the question before a metadata change: for a chosen target layer and score
(``logit`` or ``log_prob``) it computes Grad-CAM, Grad-CAM++ and HiResCAM in one fused
pass and measures each one's deletion AUC against random maps, exactly as the main study
does (same seeded sample, same steps, same random maps), by true class and on tumour
predictions.

    python -m research.cam_variants --model xception --layer add_11 --score logit -n 80 \\
        --out var/variants/xception-add_11.json

A random map is drawn on the CAM's own grid, so a layer of another size gets another
baseline; ``--random-from`` reuses the per-case random AUCs of a main-study
``explain.json`` on the same sample (checked) instead of recomputing them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ml.data.dataset import subsample
from ml.evaluation.faithfulness_study import FRACTIONS, auc_rows, random_curves, random_maps_per_case, read_cases
from ml.explain.faithfulness import REMOVALS, DeletionAUC, resize_map

METHODS = ("gradcam", "gradcam_pp", "hirescam")


def _cam_classes(names):
    from ml.explain.grad_cam import GradCAM
    from ml.explain.grad_cam_plusplus import GradCAMPlusPlus
    from ml.explain.hires_cam import HiResCAM

    known = {c.name: c for c in (GradCAM, GradCAMPlusPlus, HiResCAM)}
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"methods must be among {sorted(known)}, received: {list(names)}")
    return tuple(known[n] for n in names)


def compare_cams(analyzer, x: np.ndarray, labels: np.ndarray, *, layer: str, score: str = "logit",
                 methods=METHODS, n_random: int = 3, seed: int = 0, random_auc=None,
                 batch_size: int = 16, removal: str = "impute", random_grid: int | None = None) -> dict:
    """Deletion AUC of each CAM method at ``layer`` against random maps, per case and summed up.

    Args:
        analyzer: an :class:`ml.analysis.analyzer.Analyzer` (its model, TTA, calibration).
        x: (N, S, S) prepared inputs; labels: (N,) true classes.
        layer: target layer name; score: ``logit`` or ``log_prob``.
        n_random, seed: the random baseline, as :func:`ml.evaluation.faithfulness_study.run_explain_evaluation`
            draws it (maps seeded ``seed + 1``).
        random_auc: (N,) per-case random AUCs to reuse instead of drawing them.
        removal: how deleted pixels are replaced (:data:`ml.explain.faithfulness.REMOVALS`).
        random_grid: side of the random maps' grid (default: the CAM's own grid).

    Returns:
        ``{"n", "layer", "grid", "score", "random_auc_mean", "methods": {name: summary},
        "cases": {name: [auc...], "random": [...], "targets": [...], "labels": [...]}}``.
    """
    from ml.analysis.analyzer import fused_graph_class

    graph = fused_graph_class()(analyzer.graph.model, layer, analyzer.metadata.get("feature_layer", "features"),
                                tta=analyzer.tta, cam_methods=_cam_classes(tuple(methods)),
                                cam_score=score, temperature=analyzer.temperature)
    x = np.asarray(x, np.float32)
    maps = {m: [] for m in methods}
    targets = []
    for i in range(0, len(x), batch_size):
        out = graph(x[i:i + batch_size, ..., None], saliency=False)
        for m in methods:
            maps[m].extend(out[m])
        targets.extend(out["classes"])
    targets = np.asarray(targets, int)
    grid = tuple(np.asarray(maps[methods[0]][0]).shape)

    model_fn = analyzer.scored_probabilities          # with the flip for a flip model

    metric = DeletionAUC(FRACTIONS, removal=removal)
    rgrid = (random_grid, random_grid) if random_grid else grid
    if random_auc is None:
        curves = random_curves(metric, x, random_maps_per_case(x, rgrid, n_random, seed), targets, model_fn,
                               n_random)
        random_auc = auc_rows(curves.mean(1), FRACTIONS)
    random_auc = np.asarray(random_auc, np.float64)
    notumor = analyzer.classes.index("notumor") if "notumor" in analyzer.classes else -1
    tumour = targets != notumor
    result = {"n": int(len(x)), "layer": layer, "grid": list(grid), "score": score, "removal": removal,
              "random_grid": list(rgrid),
              "random_auc_mean": round(float(random_auc.mean()), 4), "methods": {},
              "cases": {"labels": np.asarray(labels).tolist(), "targets": targets.tolist(),
                        "random": np.round(random_auc, 4).tolist()}}
    for m in methods:
        auc = auc_rows(metric.curves(x, [resize_map(mp, analyzer.size) for mp in maps[m]], targets, model_fn),
                        FRACTIONS)
        wins = auc < random_auc
        result["methods"][m] = {
            "mean_auc": round(float(auc.mean()), 4),
            "beats_random_fraction": round(float(wins.mean()), 4),
            "beats_random_fraction_tumour_predictions": round(float(wins[tumour].mean()), 4) if tumour.any() else None,
            "by_true_class": {c: round(float(wins[labels == k].mean()), 4)
                              for k, c in enumerate(analyzer.classes) if (labels == k).any()}}
        result["cases"][m] = np.round(auc, 4).tolist()
    return result


def parse_args(argv=None) -> argparse.Namespace:
    from ml.data import dataset as mldata

    p = argparse.ArgumentParser(prog="python -m research.cam_variants", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(mldata.default_data_dir()))
    p.add_argument("--model", default=None, help="model name or folder (default: the default model)")
    p.add_argument("--layer", default=None, help="target layer (default: the model's metadata target_layer)")
    p.add_argument("--score", choices=("logit", "log_prob"), default="logit")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("-n", type=int, default=80, help="images in the sample (the main study's seeded sample)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-random", type=int, default=3)
    p.add_argument("--random-from", default=None, help="an explain.json of the main study on the same sample")
    p.add_argument("--removal", choices=REMOVALS, default="impute",
                   help="how deleted pixels are replaced (the main study imputes them)")
    p.add_argument("--random-grid", type=int, default=None,
                   help="grid of the random maps (default: the CAM's own grid)")
    p.add_argument("--out", required=True, help="JSON file to write")
    return p.parse_args(argv)


def _reused_random(path: str, labels: np.ndarray, classes) -> np.ndarray:
    cases = json.loads(Path(path).read_text())["cases"]
    if [c["true"] for c in cases] != [classes[int(k)] for k in labels]:
        raise SystemExit(f"{path} was measured on another sample (its true labels differ); drop --random-from")
    return np.array([c["random_deletion_auc"] for c in cases])


def main(argv=None) -> int:
    from types import SimpleNamespace

    from ml.model import registry
    from ml.analysis.analyzer import Analyzer
    from ml.evaluation.evaluate import select_items
    from ml.model.preprocess import prepare

    args = parse_args(argv)
    t0 = time.perf_counter()
    info = registry.get(args.model)
    items = select_items(SimpleNamespace(data=args.data, split="validation", limit=None, seed=args.seed), info)
    analyzer = Analyzer.load(str(info.path), warmup=False)
    images, labels = read_cases(subsample(list(items), args.n, args.seed))
    x = np.stack([prepare(im, analyzer.size).x for im in images])
    if args.random_from and (args.removal != "impute" or args.random_grid):
        raise SystemExit("--random-from reuses the main study's baseline: it cannot go with --removal or --random-grid")
    reuse = _reused_random(args.random_from, labels, analyzer.classes) if args.random_from else None
    result = compare_cams(analyzer, x, labels, layer=args.layer or analyzer.metadata["target_layer"],
                          score=args.score, methods=tuple(args.methods.split(",")), n_random=args.n_random,
                          seed=args.seed, random_auc=reuse, removal=args.removal, random_grid=args.random_grid)
    result["model"] = {"name": analyzer.name, "version": analyzer.version}
    result["random_from"] = args.random_from
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{analyzer.name} {analyzer.version} layer {result['layer']} {result['grid']} score {args.score}, "
          f"removal {args.removal}, random grid {result['random_grid']}, "
          f"n={result['n']}, random deletion AUC {result['random_auc_mean']}")
    for m, s in result["methods"].items():
        by = " ".join(f"{c} {v:.3f}" for c, v in s["by_true_class"].items())
        print(f"  {m:11s} beats random {s['beats_random_fraction']:.3f}, tumour predictions "
              f"{s['beats_random_fraction_tumour_predictions']}, AUC {s['mean_auc']:.3f} | {by}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
