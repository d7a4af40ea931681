"""``python -m ml.evaluate``: score a model on any one-folder-per-class directory.

Writes ``metrics.json`` (the figures docs/model-card.md quotes), ``confusion_matrix.png`` and
``reliability.png`` to --out, shows a progress bar and prints a summary table.
Images the input guard rejects count as errors (label ``not_brain_mri``).
``--explain`` adds the faithfulness study of the explanation maps.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ml.data import dataset as mldata
from ml.evaluation import metrics
from ml.labels import CLASSES, LABELS
from ml.model import calibration, registry


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.evaluate", description=__doc__)
    p.add_argument("--data", default=str(mldata.default_data_dir()))
    p.add_argument("--model", default=None, help="model name or folder (default: the default model)")
    p.add_argument("--out", required=True)
    p.add_argument("--split", choices=("all", "validation"), default="all",
                   help="'validation': only the model's own held-out split of --data")
    p.add_argument("--limit", type=int, default=None, help="a seeded sample of N images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--explain", action="store_true", help="also measure explanation faithfulness")
    p.add_argument("--explain-n", type=int, default=100, help="images in the faithfulness sample")
    return p.parse_args(argv)


def select_items(args, info: registry.ModelInfo) -> list[mldata.Item]:
    items = mldata.scan(args.data)
    if args.split == "validation":
        ds = info.metadata["dataset"]
        if mldata.manifest_sha256(items, args.data) != ds["manifest_sha256"]:
            raise SystemExit("--split validation needs the exact dataset the model was trained on")
        _, val_idx = mldata.grouped_split(items, ds["val_fraction"], info.metadata["seed"])
        items = [items[i] for i in val_idx]
    return mldata.subsample(items, args.limit, args.seed)


def run(items, info: registry.ModelInfo, batch_size: int = 32, progress: bool = True) -> dict:
    """Classify items with the model's TTA, calibration and the guard; return raw arrays."""
    from ml.guard.source import for_metadata
    from ml.io.read import read_frames
    from ml.model.predict import logits_and_features_model, predict_logits_features, uses_flip
    from ml.model.preprocess import prepare

    meta = info.metadata
    model = registry.load_keras(info)
    dual = logits_and_features_model(model, meta["feature_layer"])
    source = for_metadata(meta, info.name)
    if source is None:
        raise ValueError(f"model {info.name} has no input guard (metadata 'guard' or 'guard_model')")
    size, temp = meta["input_size"], meta["temperature"]
    logits, in_dist = [], []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="evaluate", unit="img", file=sys.stderr)
    for i in range(0, len(items), batch_size):
        batch = items[i:i + batch_size]
        frames = [read_frames(it.path)[0] for it in batch]
        prepared = [prepare(f.pixels, size) for f in frames]
        xs = np.stack([p.x for p in prepared])[..., None]
        lo, fe = predict_logits_features(dual, xs, tta=uses_flip(meta))
        logits.append(lo)
        gx, gfe = [p.x for p in prepared], fe
        if source.borrowed:
            gx, _, gfe = source.features([f.pixels for f in frames])
        for f, x, feat in zip(frames, gx, gfe):
            in_dist.append(source.guard.assess(f.pixels, x, feat, meta=f.meta).in_distribution)
        if bar:
            bar.update(len(batch))
    if bar:
        bar.close()
    logits = np.concatenate(logits) if logits else np.zeros((0, len(CLASSES)), np.float32)
    return {"logits": logits, "in_distribution": np.array(in_dist, bool), "temperature": temp}


def score(items, raw: dict, info: registry.ModelInfo) -> dict:
    y = np.array([it.label for it in items])
    p_raw = calibration.softmax(raw["logits"])
    p_cal = calibration.softmax(raw["logits"], raw["temperature"])
    pred = p_cal.argmax(1)
    rejected = ~raw["in_distribution"]
    # A rejected image counts as wrong: label index 4 = not_brain_mri.
    pred_with_guard = np.where(rejected, len(CLASSES), pred)
    out = metrics.summary(y, pred_with_guard)
    cm = metrics.confusion(y, pred_with_guard, len(CLASSES), len(CLASSES) + 1)
    out.update({
        "classes": list(CLASSES),
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_columns": list(LABELS),
        "accuracy_ignoring_guard": metrics.accuracy(y, pred),
        "ece": calibration.expected_calibration_error(p_cal, y),
        "ece_uncalibrated": calibration.expected_calibration_error(p_raw, y),
        "reliability": calibration.reliability_bins(p_cal, y),
        "reliability_uncalibrated": calibration.reliability_bins(p_raw, y),
        "rejected_as_not_brain_mri": int(rejected.sum()),
        "model": {"name": info.name, "version": info.version, "sha256": info.sha256,
                  "arch": info.metadata["arch"], "temperature": raw["temperature"]},
    })
    return out


def print_table(m: dict) -> None:
    print(f"\nmodel {m['model']['name']} ({m['model']['version']}), n = {m['n']}")
    print(f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, v in m["per_class"].items():
        print(f"{name:<12}{v['precision']:>10.4f}{v['recall']:>10.4f}{v['f1']:>10.4f}{v['support']:>9}")
    lo, hi = m["accuracy_ci95"]
    print(f"accuracy {m['accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}), macro-F1 {m['macro_f1']:.4f}, "
          f"ECE {100 * m['ece']:.2f}% (uncalibrated {100 * m['ece_uncalibrated']:.2f}%), "
          f"rejected as not brain MRI: {m['rejected_as_not_brain_mri']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    from ml.evaluation.plots import confusion_matrix_png, reliability_png

    info = registry.get(args.model)
    items = select_items(args, info)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = run(items, info, args.batch_size)
    m = score(items, raw, info)
    m["data"] = {"dir": str(args.data), "split": args.split, "limit": args.limit, "seed": args.seed}
    if args.explain:
        from ml.evaluation.faithfulness_study import run_explain_evaluation

        m["explain"] = run_explain_evaluation(info, items, out, args.explain_n)
    (out / "metrics.json").write_text(json.dumps(m, indent=1))
    confusion_matrix_png(np.array(m["confusion_matrix"]), m["confusion_matrix_columns"],
                         out / "confusion_matrix.png")
    reliability_png(m["reliability_uncalibrated"], m["reliability"], out / "reliability.png",
                    m["ece_uncalibrated"], m["ece"])
    print_table(m)
    print(f"wrote {out / 'metrics.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
