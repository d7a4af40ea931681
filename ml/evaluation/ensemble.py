"""``python -m ml.evaluation.ensemble``: the last errors, paired against the default model.

Scores on the model's validation split (as ``ml.evaluate --split validation``), each try
against the shipped default (``xception``, no TTA):

- each extra view of :mod:`ml.evaluation.view_logits` alone, and averaged with the
  model's shipped views (test-time augmentation other than the flip), for both models;
- an ensemble of ``xception`` and ``cnn`` (each with its shipped TTA): the mean of their
  calibrated probabilities, of their temperature-scaled logits, and a weighted mean
  whose weight is chosen by stratified k-fold cross-validation on the split (each
  image is scored with a weight fitted on the other folds, never on itself).

Each try gets its accuracy with the 95% bootstrap CI of :func:`ml.evaluation.metrics.summary`,
the accuracy with the input guard's rejections counted as errors, the paired counts
against the default (images fixed and broken) and the exact McNemar p-value. A try is
*kept* only when its accuracy is above the default's CI and p < 0.05. Per-image logits
are cached (``--cache``), so a rerun is arithmetic. Writes ``--out``/last_errors.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ml.data import dataset as mldata
from ml.evaluation import evaluate, metrics
from ml.evaluation.view_logits import VIEWS, view_logits
from ml.labels import CLASSES, LABELS
from ml.model import calibration, registry


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.evaluation.ensemble", description=__doc__)
    p.add_argument("--data", default=str(mldata.default_data_dir()))
    p.add_argument("--base", default="xception", help="the model the tries are paired against")
    p.add_argument("--other", default="cnn", help="the ensemble's second model")
    p.add_argument("--views", nargs="+", default=list(VIEWS), choices=list(VIEWS))
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds for the weight")
    p.add_argument("--cache", default="var/ensemble/cache")
    p.add_argument("--out", default="docs/eval/last-errors")
    return p.parse_args(argv)


def shipped_views(info) -> list[str]:
    """The views a model's shipped TTA averages: (identity, hflip) or (identity)."""
    from ml.model.predict import uses_flip

    return ["identity", "hflip"] if uses_flip(info.metadata) else ["identity"]


def mean_logits(per_view: dict, views) -> np.ndarray:
    """(N, C): the TTA mean of the cached logits over ``views``."""
    return np.mean([per_view[v]["logits"] for v in views], axis=0)


def stratified_folds(y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(N,) fold index in [0, k), each class spread evenly over the folds."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = np.arange(len(idx)) % k
    return fold


def cross_validated_mix(y, pa, pb, k: int = 5, grid=np.linspace(0, 1, 21)) -> tuple[np.ndarray, list]:
    """w * pa + (1 - w) * pb with w chosen per fold by NLL on the other folds.

    Args:
        y: (N,) labels; pa, pb: (N, C) probabilities of the two models.

    Returns:
        (N, C) mixed probabilities, each row from a weight fitted without it, and the k weights.
    """
    fold, mixed, weights = stratified_folds(y, k), np.zeros_like(pa), []
    for f in range(k):
        fit, held = fold != f, fold == f
        nll = [-np.mean(np.log(np.clip((w * pa[fit] + (1 - w) * pb[fit])[np.arange(fit.sum()), y[fit]],
                                       1e-12, 1))) for w in grid]
        w = round(float(grid[int(np.argmin(nll))]), 3)
        weights.append(w)
        mixed[held] = w * pa[held] + (1 - w) * pb[held]
    return mixed, weights


def score_try(y, pred, in_dist, base_ok, n_boot: int = 1000) -> dict:
    """Accuracy (CI), with the guard, errors by (true, predicted) and the paired test."""
    s = metrics.summary(y, pred, n_boot)
    ok = pred == y
    errors: dict[str, int] = {}
    for t, p in zip(y[~ok], pred[~ok]):
        key = f"{CLASSES[t]}->{CLASSES[p]}"
        errors[key] = errors.get(key, 0) + 1
    guarded = np.where(in_dist, pred, len(CLASSES))
    return {"accuracy": s["accuracy"], "accuracy_ci95": s["accuracy_ci95"], "errors": int((~ok).sum()),
            "accuracy_with_guard": metrics.accuracy(y, guarded), "errors_by_kind": errors,
            **metrics.mcnemar_exact(base_ok, ok)}


def guard_mask(items, info, cache_dir: Path) -> np.ndarray:
    """(N,) bool: the input guard the model uses accepts each image (cached)."""
    owner = registry.get(info.metadata.get("guard_model") or info.name)
    f = cache_dir / f"guard-{owner.name}-{owner.version}-{len(items)}-{items[0].sha256[:12]}.npy"
    if not f.exists():
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, evaluate.run(items, owner, progress=False)["in_distribution"])
    return np.load(f)


def tries(base, other, lb, lo) -> dict[str, tuple[np.ndarray, str]]:
    """Every try's (N, C) probabilities and a one-line description.

    lb, lo: cached view logits of the base and the other model (``{view: ...}``, the
    shipped views included); probabilities are softmax(logits / T) with each model's
    shipped temperature (argmax does not depend on T).
    """
    tb, to = base.metadata["temperature"], other.metadata["temperature"]
    sb, so = shipped_views(base), shipped_views(other)
    pb = calibration.softmax(mean_logits(lb, sb), tb)
    po = calibration.softmax(mean_logits(lo, so), to)
    out = {base.name: (pb, f"shipped default, views {sb}"), other.name: (po, f"views {so}")}
    for name, lv, shipped, t in ((base.name, lb, sb, tb), (other.name, lo, so, to)):
        views = list(lv)
        for v in views:
            if v in shipped:
                continue
            out[f"{name} {v} alone"] = (calibration.softmax(lv[v]["logits"], t), "that view only")
            out[f"{name} {'+'.join(shipped)}+{v}"] = (
                calibration.softmax(mean_logits(lv, shipped + [v]), t), "TTA: mean logits")
        if len(views) > len(shipped) + 1:
            out[f"{name} all views"] = (calibration.softmax(mean_logits(lv, views), t), f"TTA over {views}")
    out[f"{base.name}+{other.name} mean p"] = (0.5 * (pb + po), "mean of calibrated probabilities")
    zb, zo = mean_logits(lb, sb) / tb, mean_logits(lo, so) / to
    out[f"{base.name}+{other.name} mean logits"] = (calibration.softmax(zb + zo, 2.0), "mean of logits / T")
    return out


def run(args) -> dict:
    """Compute (or read) the cached logits, score every try, return the JSON-ready result."""
    base, other = registry.get(args.base), registry.get(args.other)
    sel = argparse.Namespace(data=args.data, split="validation", limit=None, seed=0)
    items = evaluate.select_items(sel, base)
    if [it.sha256 for it in evaluate.select_items(sel, other)] != [it.sha256 for it in items]:
        raise SystemExit(f"{args.base} and {args.other} do not share a validation split")
    cache = Path(args.cache)
    lb = view_logits(base, items, list(dict.fromkeys(shipped_views(base) + args.views)), cache)
    lo = view_logits(other, items, list(dict.fromkeys(shipped_views(other) + args.views)), cache)
    y = np.array([it.label for it in items])
    in_dist = guard_mask(items, base, cache)
    probs = tries(base, other, lb, lo)
    mixed, weights = cross_validated_mix(y, probs[base.name][0], probs[other.name][0], args.folds)
    probs[f"{base.name}+{other.name} CV-weighted p"] = (
        mixed, f"w * p_{base.name} + (1 - w) * p_{other.name}, w per fold {weights}")
    base_ok = probs[base.name][0].argmax(1) == y
    other_ok = probs[other.name][0].argmax(1) == y
    # Where a mix of the two can help: it fixes an image both get wrong only if the
    # true class is each one's runner-up, and most fixes come from the other's right answers.
    overlap = {"base_wrong": int((~base_ok).sum()), "other_wrong": int((~other_ok).sum()),
               "both_wrong": int((~base_ok & ~other_ok).sum()),
               "other_right_where_base_wrong": int((~base_ok & other_ok).sum())}
    results = {name: {"what": what, **score_try(y, p.argmax(1), in_dist, base_ok)}
               for name, (p, what) in probs.items()}
    ci_hi = results[base.name]["accuracy_ci95"][1]
    for r in results.values():
        r["kept"] = bool(r["accuracy"] > ci_hi and r["p"] < 0.05)
    cost = {f"{m.name} {v}": lv[v]["seconds_per_image"] for m, lv in ((base, lb), (other, lo)) for v in lv}
    return {"n": len(items), "split": "validation", "base": base.name, "base_version": base.version,
            "other": other.name, "other_version": other.version, "rejected_by_guard": int((~in_dist).sum()),
            "labels": list(LABELS), "error_overlap": overlap, "tries": results,
            "forward_seconds_per_image": cost}


def print_table(res: dict) -> None:
    """The result as the markdown table docs/model-card.md quotes."""
    print(f"\n{res['n']} validation images; paired against {res['base']} ({res['base_version']}); "
          f"{res['rejected_by_guard']} rejected by the guard; errors: {res['error_overlap']}\n")
    print("| try | accuracy (95% CI) | errors | with the guard | fixed / broken | McNemar p | kept |")
    print("|---|---|---|---|---|---|---|")
    for name, r in res["tries"].items():
        lo, hi = r["accuracy_ci95"]
        print(f"| {name} | {100 * r['accuracy']:.2f}% ({100 * lo:.1f}-{100 * hi:.1f}) | {r['errors']} | "
              f"{100 * r['accuracy_with_guard']:.2f}% | {r['fixed']} / {r['broken']} | {r['p']:.3g} | "
              f"{'yes' if r['kept'] else 'no'} |")
    print("\nforward pass, s an image (this run's machine):",
          ", ".join(f"{k} {v:.3f}" for k, v in res["forward_seconds_per_image"].items()))


def main(argv=None) -> int:
    args = parse_args(argv)
    res = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "last_errors.json").write_text(json.dumps(res, indent=1))
    print_table(res)
    print(f"wrote {out / 'last_errors.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
