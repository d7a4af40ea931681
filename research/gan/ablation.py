"""``python -m research.gan ablation``: does GAN augmentation help the classifier?

Trains the classifier (``python -m ml.train``, one subprocess per arm) with the same seed,
the same grouped validation split and the same optimisation budget:

  real_only           --no-augment
  classic             the default classic augmentation
  classic_gan_<r>     classic + ``--synthetic DIR --synthetic-ratio r`` for each --ratios r

Budget: with ``--budget steps`` (default) an arm with ratio r runs round(E / (1 + r))
epochs, so every arm takes about the same number of optimizer steps; ``--budget epochs``
gives every arm E epochs (GAN arms then also get more steps).
Before training, the synthetic folder's provenance (gan_samples.json) is checked: the GAN
must have been trained on the same dataset without this validation split, otherwise the
comparison leaks. Reported: validation accuracy and macro-F1 with 95% bootstrap CIs (from
each arm's metadata.json), and paired bootstrap CIs of the difference to ``classic`` on
the identical validation images. One seed: the CIs cover validation sampling, not
run-to-run training variance.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REFERENCE_ARM = "classic"


@dataclass(frozen=True)
class Arm:
    name: str
    ratio: float = 0.0
    augment: bool = True
    extra: tuple = field(default_factory=tuple)


def arms_for(ratios, synthetic: str | None) -> list[Arm]:
    arms = [Arm("real_only", augment=False), Arm("classic")]
    for r in ratios:
        arms.append(Arm(f"classic_gan_{r:g}", float(r), True,
                        ("--synthetic", str(synthetic), "--synthetic-ratio", f"{r:g}")))
    return arms


def epochs_for(arm: Arm, epochs: int, budget: str) -> int:
    return max(1, round(epochs / (1.0 + arm.ratio))) if budget == "steps" else epochs


def train_command(arm: Arm, args) -> list[str]:
    """The ``python -m ml.train`` argv for one arm."""
    cmd = [sys.executable, "-m", "ml.train", "--data", str(args.data), "--out", str(Path(args.out) / arm.name),
           "--name", arm.name, "--arch", args.arch, "--seed", str(args.seed),
           "--epochs", str(epochs_for(arm, args.epochs, args.budget)),
           "--val-fraction", f"{args.val_fraction:g}", "--cache-dir", str(args.cache_dir)]
    for flag, value in (("--limit", args.limit), ("--input-size", args.input_size),
                        ("--batch-size", args.batch_size)):
        if value is not None:
            cmd += [flag, str(value)]
    if not arm.augment:
        cmd.append("--no-augment")
    return cmd + list(arm.extra)


def _real_items(args):
    from ml.data import dataset as mldata

    items = mldata.subsample(mldata.scan(args.data), args.limit, args.seed)
    return items, mldata.grouped_split(items, args.val_fraction, args.seed)


def check_synthetic(args, max_ratio: float) -> dict:
    """Refuse a synthetic folder that could leak validation images or is too small.

    Raises:
        SystemExit: with the reason.
    """
    from ml.data import dataset as mldata

    prov_file = Path(args.synthetic) / "gan_samples.json"
    if not prov_file.is_file():
        raise SystemExit(f"{prov_file} missing: write the folder with `python -m research.gan sample`")
    prov = json.loads(prov_file.read_text())
    items, (tr, _) = _real_items(args)
    trained_on = prov.get("trained_on", {})
    problems = []
    if trained_on.get("manifest_sha256") != mldata.manifest_sha256(items, args.data):
        problems.append("the GAN was trained on a different dataset (manifest differs; same --data/--limit?)")
    if not trained_on.get("excluded_validation"):
        problems.append("the GAN saw the validation split (trained with --include-validation)")
    if trained_on.get("split_seed") != args.seed or trained_on.get("val_fraction") != args.val_fraction:
        problems.append(f"the GAN excluded split (seed {trained_on.get('split_seed')}, fraction "
                        f"{trained_on.get('val_fraction')}) is not this one (seed {args.seed}, {args.val_fraction})")
    have, need = prov["per_class"] * len(prov["classes"]), int(round(max_ratio * len(tr)))
    if have < need:
        problems.append(f"ratio {max_ratio:g} needs {need} images, the folder has {have}: "
                        f"sample --per-class {-(-need // len(prov['classes']))}")
    if problems and not args.allow_unchecked_synthetic:
        raise SystemExit("synthetic folder rejected:\n- " + "\n- ".join(problems))
    return {"provenance": prov, "problems": problems}


def paired_bootstrap(y, pred_a, pred_b, stat, n_boot: int = 1000, seed: int = 0) -> dict:
    """stat(y, pred_a) - stat(y, pred_b) with a percentile CI over resampled items."""
    y, pa, pb = np.asarray(y), np.asarray(pred_a), np.asarray(pred_b)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        diffs.append(stat(y[i], pa[i]) - stat(y[i], pb[i]))
    return {"diff": float(stat(y, pa) - stat(y, pb)),
            "ci95": [float(np.quantile(diffs, 0.025)), float(np.quantile(diffs, 0.975))]}


def validation_predictions(arm_dir: Path, x_val_uint8: np.ndarray) -> np.ndarray:
    """Predicted classes on the validation images, as ml.training.finalize computes them (TTA, argmax)."""
    import keras

    from ml.model.predict import logits_and_features_model, predict_logits_features

    meta = json.loads((arm_dir / "metadata.json").read_text())
    model = keras.models.load_model(arm_dir / "model.keras", compile=False)
    dual = logits_and_features_model(model, meta["feature_layer"])
    logits, _ = predict_logits_features(dual, (x_val_uint8.astype(np.float32) / 255.0)[..., None])
    return logits.argmax(1)


def collect(args, arms: list[Arm]) -> dict:
    """Read each arm's metadata.json and add paired differences to the reference arm."""
    from ml.data import dataset as mldata
    from ml.evaluation import metrics

    items, (_, va) = _real_items(args)
    y_val = np.array([items[i].label for i in va])
    results, preds, x_val = {}, {}, None
    for arm in arms:
        d = Path(args.out) / arm.name
        if not (d / "metadata.json").is_file():
            results[arm.name] = {"status": "not run"}
            continue
        meta = json.loads((d / "metadata.json").read_text())
        v = meta["validation"]
        if x_val is None:
            x_val = mldata.load_arrays(items, int(meta["input_size"]), cache_dir=args.cache_dir)[va]
        preds[arm.name] = validation_predictions(d, x_val)
        recomputed = metrics.accuracy(y_val, preds[arm.name])
        if abs(recomputed - v["accuracy"]) > 0.01:
            raise RuntimeError(f"{arm.name}: recomputed validation accuracy {recomputed:.4f} != metadata "
                               f"{v['accuracy']:.4f}; the split here is not the one ml.training.train used")
        t = meta["training"]
        results[arm.name] = {
            "status": "done", "ratio": arm.ratio, "augment": arm.augment,
            "n_train_real": meta["dataset"]["n_train"], "n_synthetic": t.get("n_synthetic", 0),
            "epochs": t["args"]["epochs"], "epochs_run": t.get("epochs_run"), "seconds": t.get("seconds"),
            "n_validation": v["n"], "accuracy": v["accuracy"], "accuracy_ci95": v["accuracy_ci95"],
            "macro_f1": v["macro_f1"], "macro_f1_ci95": v["macro_f1_ci95"],
        }
    if REFERENCE_ARM in preds:
        for name, p in preds.items():
            if name != REFERENCE_ARM:
                results[name]["vs_" + REFERENCE_ARM] = {
                    "accuracy": paired_bootstrap(y_val, p, preds[REFERENCE_ARM], metrics.accuracy),
                    "macro_f1": paired_bootstrap(y_val, p, preds[REFERENCE_ARM], metrics.macro_f1),
                }
    return results


def format_table(results: dict) -> str:
    """Markdown table (the one docs/gan.md shows)."""
    lines = ["| arm | real + synthetic train | epochs (run) | val accuracy [95% CI] | val macro-F1 [95% CI] | "
             f"Δ macro-F1 vs {REFERENCE_ARM} [95% CI] |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if r.get("status") != "done":
            lines.append(f"| {name} | not yet measured | | | | |")
            continue
        d = r.get("vs_" + REFERENCE_ARM, {}).get("macro_f1")
        delta = f"{d['diff']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}]" if d else "—"
        a, f = r["accuracy_ci95"], r["macro_f1_ci95"]
        lines.append(f"| {name} | {r['n_train_real']} + {r['n_synthetic']} | {r['epochs']} ({r['epochs_run']}) | "
                     f"{r['accuracy']:.4f} [{a[0]:.4f}, {a[1]:.4f}] | {r['macro_f1']:.4f} [{f[0]:.4f}, {f[1]:.4f}] | "
                     f"{delta} |")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ml.data import dataset as mldata

    p.add_argument("--synthetic", default=None, help="folder written by `research.gan sample` (needed for GAN arms)")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.25, 1.0])
    p.add_argument("--out", default="var/ablation")
    p.add_argument("--data", default=str(mldata.default_data_dir()))
    p.add_argument("--arch", default="cnn")
    p.add_argument("--epochs", type=int, default=28, help="epochs of the real-only arms")
    p.add_argument("--budget", choices=("steps", "epochs"), default="steps")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--cache-dir", default="var/cache")
    p.add_argument("--arms", nargs="+", default=None, help="run only these arms (by name)")
    p.add_argument("--force", action="store_true", help="retrain arms that already have metadata.json")
    p.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    p.add_argument("--report-only", action="store_true", help="train nothing; tabulate what exists")
    p.add_argument("--allow-unchecked-synthetic", action="store_true",
                   help="warn instead of refusing a synthetic folder that fails the provenance check")


def main(args: argparse.Namespace) -> int:
    arms = arms_for(args.ratios, args.synthetic)
    if args.arms:
        unknown = set(args.arms) - {a.name for a in arms}
        if unknown:
            raise SystemExit(f"unknown arms {sorted(unknown)}; available: {[a.name for a in arms]}")
        arms = [a for a in arms if a.name in args.arms]
    gan_arms = [a for a in arms if a.ratio > 0]
    if args.dry_run:
        for arm in arms:
            print(" ".join(train_command(arm, args)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    synthetic = None
    if gan_arms and not args.report_only:
        if not args.synthetic:
            raise SystemExit("GAN arms need --synthetic DIR (from `python -m research.gan sample`)")
        synthetic = check_synthetic(args, max(a.ratio for a in gan_arms))
    for arm in [] if args.report_only else arms:
        if (out / arm.name / "metadata.json").is_file() and not args.force:
            print(f"{arm.name}: already trained, skipping (--force retrains)", flush=True)
            continue
        cmd = train_command(arm, args)
        print(f"{arm.name}: {' '.join(cmd)}", flush=True)
        (out / arm.name).mkdir(parents=True, exist_ok=True)
        with open(out / arm.name / "train.log", "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        if rc:
            raise SystemExit(f"{arm.name}: ml.training.train exited {rc}; see {out / arm.name / 'train.log'}")
    results = collect(args, arms)
    report = {"arms": results, "seed": args.seed, "budget": args.budget, "epochs": args.epochs,
              "val_fraction": args.val_fraction, "synthetic": args.synthetic,
              "synthetic_check": synthetic, "reference_arm": REFERENCE_ARM}
    (out / "ablation.json").write_text(json.dumps(report, indent=1))
    table = format_table(results)
    (out / "ablation.md").write_text(table + "\n")
    print(table)
    return 0
