"""``python -m ml.evaluation.study_rule``: choose the study rule's k and t from data.

The validation split's calibrated per-slice predictions (the default model, cached under
--cache) are assembled into **synthetic** series, since the dataset holds single slices:

- normal series: ``--slices`` slices drawn (seeded, with replacement) from validation
  ``notumor`` slices; specificity = the share of them not given a tumour label;
- tumour series: the same, with a run of ``--lesion-slices`` contiguous slices of one tumour
  class drawn from that class's validation slices at a random place (the assumption: a tumour
  is seen on at least n slices); sensitivity = the share given that class's label.

Slices are drawn independently, so neighbouring slices are less alike than in a real
series: the figures are for the rule on the model's per-slice errors, not for real studies.
``--write`` stores the chosen k and t in the rules file.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np

from ml.data import dataset as mldata
from ml.evaluation.evaluate import run, select_items
from ml.labels import CLASSES, NO_TUMOUR, TUMOUR_CLASSES
from ml.model import calibration, registry
from ml.study import SeriesEvidence, SeriesFacts, SliceScore, study_finding
from ml.study.rules import DEFAULT_RULES_PATH

KS = (1, 2, 3, 4, 5)
TS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.evaluation.study_rule", description=__doc__)
    p.add_argument("--data", default=str(mldata.default_data_dir()))
    p.add_argument("--model", default=None, help="model name (default: the default model)")
    p.add_argument("--cache", default="var/cache/study_rule", help="where the per-slice predictions are kept")
    p.add_argument("--series", type=int, default=1000, help="synthetic series per kind")
    p.add_argument("--slices", type=int, default=20, help="slices per synthetic series")
    p.add_argument("--lesion-slices", type=int, default=5, help="n: slices a tumour is seen on")
    p.add_argument("--min-specificity", type=float, default=0.99)
    p.add_argument("--min-sensitivity", type=float, default=0.95)
    p.add_argument("--min-k", type=int, default=2, help="a study never rests on fewer agreeing slices")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--write", action="store_true", help="write the chosen k and t into the rules file")
    p.add_argument("--rules", default=str(DEFAULT_RULES_PATH))
    return p.parse_args(argv)


def predictions(args, info) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, calibrated probabilities, in_distribution) of the validation split; cached."""
    key = hashlib.sha256(f"{info.name}:{info.sha256}:{args.data}".encode()).hexdigest()[:16]
    path = Path(args.cache) / f"{info.name}-{key}.npz"
    if path.exists():
        z = np.load(path)
        return z["y"], z["p"], z["in_dist"]
    items = select_items(argparse.Namespace(data=args.data, split="validation", limit=None, seed=0), info)
    raw = run(items, info)
    y = np.array([it.label for it in items])
    p = calibration.softmax(raw["logits"], raw["temperature"])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, y=y, p=p, in_dist=raw["in_distribution"])
    return y, p, raw["in_distribution"]


def synthetic(y, p, ok, args, rng, tumour: int | None) -> list[SeriesEvidence]:
    """``--series`` synthetic series: notumor slices, with a lesion run of class ``tumour``."""
    normal = np.flatnonzero(y == CLASSES.index(NO_TUMOUR))
    out = []
    for _ in range(args.series):
        idx = rng.choice(normal, args.slices)
        if tumour is not None:
            start = rng.integers(0, args.slices - args.lesion_slices + 1)
            idx[start:start + args.lesion_slices] = rng.choice(np.flatnonzero(y == tumour), args.lesion_slices)
        slices = [SliceScore(i + 1, dict(zip(CLASSES, map(float, p[j]))), bool(ok[j])) for i, j in enumerate(idx)]
        out.append(SeriesEvidence(SeriesFacts(number=1), slices))
    return out


def grid(y, p, ok, args) -> list[dict]:
    """Specificity and sensitivity of every (k, t) on the same synthetic series."""
    rng = np.random.default_rng(args.seed)
    normals = synthetic(y, p, ok, args, rng, None)
    tumours = [(CLASSES[c], s) for c in (CLASSES.index(t) for t in TUMOUR_CLASSES)
               for s in synthetic(y, p, ok, args, rng, c)]
    rows = []
    for k in KS:
        for t in TS:
            normal_labels = [study_finding([s], k=k, t=t).label for s in normals]
            tumour_labels = [(cls, study_finding([s], k=k, t=t).label) for cls, s in tumours]
            rows.append({
                "k": k, "t": t,
                "specificity": float(np.mean([lab not in TUMOUR_CLASSES for lab in normal_labels])),
                "normal_called_no_tumour": float(np.mean([lab == NO_TUMOUR for lab in normal_labels])),
                "sensitivity": float(np.mean([lab == cls for cls, lab in tumour_labels])),
                "tumour_flagged": float(np.mean([lab in TUMOUR_CLASSES for _, lab in tumour_labels])),
            })
    return rows


def choose(rows: list[dict], min_specificity: float, min_sensitivity: float, min_k: int) -> dict:
    """Among k >= min_k at both floors: the most normal series called "no tumour" (fewest needless
    reviews), then the highest sensitivity, then the larger k. Without such a row: the highest
    sensitivity at the specificity floor.

    k = 1 is left out on purpose: on the validation split no normal slice is confidently wrong,
    so k = 1 looks perfect here, yet one confident false slice of a real study is exactly the
    failure this rule exists for."""
    fit = [r for r in rows if r["k"] >= min_k and r["specificity"] >= min_specificity
           and r["sensitivity"] >= min_sensitivity]
    if fit:
        return max(fit, key=lambda r: (r["normal_called_no_tumour"], r["sensitivity"], r["k"]))
    fit = [r for r in rows if r["k"] >= min_k and r["specificity"] >= min_specificity] or rows
    return max(fit, key=lambda r: (r["sensitivity"], r["normal_called_no_tumour"], r["k"]))


def main(argv=None) -> int:
    args = parse_args(argv)
    info = registry.get(args.model)
    y, p, ok = predictions(args, info)
    rows = grid(y, p, ok, args)
    best = choose(rows, args.min_specificity, args.min_sensitivity, args.min_k)
    print(f"model {info.name} {info.version}; validation slices {len(y)}; SYNTHETIC series of {args.slices} "
          f"slices, {args.series} normal and {args.series} per tumour class, lesion on {args.lesion_slices} slices")
    print(f"{'k':>2} {'t':>5} {'specificity':>11} {'no-tumour':>9} {'sensitivity':>11} {'flagged':>8}")
    for r in rows:
        print(f"{r['k']:>2} {r['t']:>5.2f} {r['specificity']:>11.4f} {r['normal_called_no_tumour']:>9.4f} "
              f"{r['sensitivity']:>11.4f} {r['tumour_flagged']:>8.4f}")
    print(f"chosen (k >= {args.min_k}, specificity >= {args.min_specificity}, sensitivity >= "
          f"{args.min_sensitivity}, then most normal series called no tumour): k={best['k']} t={best['t']} "
          f"specificity {best['specificity']:.4f} no-tumour {best['normal_called_no_tumour']:.4f} "
          f"sensitivity {best['sensitivity']:.4f}")
    if args.write:  # only the two numbers change: the file keeps its layout for people to read
        path = Path(args.rules)
        text = path.read_text()
        text = re.sub(r'("k":\s*)[0-9.]+', rf"\g<1>{best['k']}", text, count=1)
        text = re.sub(r'("t":\s*)[0-9.]+', rf"\g<1>{best['t']}", text, count=1)
        json.loads(text)  # still valid JSON
        path.write_text(text)
        print(f"wrote k={best['k']} t={best['t']} to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
