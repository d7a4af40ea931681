"""``python -m ml.recalibrate``: refit a shipped model's temperature, and choose its TTA and guard.

Changes a model's ``metadata.json`` without retraining it:

* ``--tta none|hflip``: how the product predicts. The temperature is refitted and the
  validation figures measured that way (also when the TTA stays as it was) (``ml.training.finalize.calibrate``, the same code
  ``ml.training.train`` runs), on the model's own validation split.
* ``--guard-model NAME``: borrow another shipped model's input guard (``ml.guard.source``).
  Both models must share the dataset manifest and the validation split, so the lender's
  guard evaluation (false rejects on that split, AUROC on the foreign set) is the
  borrower's too: it is copied from the lender's metadata. The borrower's own guard, if
  any, is dropped and its evaluation kept as ``own_guard_evaluation``.

A model that keeps its own guard cannot change its TTA here: its guard statistics were
fitted on features computed the old way (``ml.train --finalize-only --tta`` refits them).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import numpy as np

from ml.data import dataset as mldata
from ml.model import registry
from ml.model.predict import uses_flip


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.recalibrate", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="shipped model name or folder")
    p.add_argument("--data", default=str(mldata.default_data_dir()), help="the dataset it was trained on")
    p.add_argument("--tta", choices=("hflip", "none"), default=None, help="default: keep the model's")
    p.add_argument("--guard-model", default=None, help="borrow this shipped model's input guard")
    p.add_argument("--cache-dir", default="var/cache")
    p.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")
    return p.parse_args(argv)


def _validation_split(meta: dict, data_dir: str, cache_dir: str):
    items = mldata.scan(data_dir)
    ds = meta["dataset"]
    if mldata.manifest_sha256(items, data_dir) != ds["manifest_sha256"]:
        raise SystemExit("the dataset differs from the one the model was trained on (manifest sha256)")
    _, val_idx = mldata.grouped_split(items, ds["val_fraction"], meta["seed"])
    val_items = [items[i] for i in val_idx]
    x = mldata.load_arrays(val_items, int(meta["input_size"]), cache_dir=cache_dir)
    return (x.astype(np.float32) / 255.0)[..., None], np.array([it.label for it in val_items])


def borrow_guard(meta: dict, lender: registry.ModelInfo) -> dict:
    """``meta`` changed to borrow ``lender``'s guard (a new dict)."""
    lm = lender.metadata
    if not lm.get("guard"):
        raise SystemExit(f"{lender.name} has no input guard of its own to lend")
    for key in ("manifest_sha256", "val_fraction", "n_validation"):
        if lm["dataset"].get(key) != meta["dataset"].get(key):
            raise SystemExit(f"{lender.name} was validated on other data ({key} differs): "
                             "its guard evaluation would not apply")
    if lm.get("seed") != meta.get("seed"):
        raise SystemExit(f"{lender.name} used another split seed: its guard evaluation would not apply")
    out = dict(meta)
    if "guard" in out:
        out.pop("guard")
        out["own_guard_evaluation"] = out.get("guard_evaluation")
    out["guard_model"] = lender.name
    why = (meta.get("guard_evaluation") or {}).get("borrowed_from", {}).get("why")
    out["guard_evaluation"] = {**lm["guard_evaluation"],
                               "borrowed_from": {"name": lender.name, "version": lender.version,
                                                 **({"why": why} if why else {})}}
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    info = registry.get(args.model)
    meta = dict(info.metadata)
    current = "hflip" if uses_flip(meta) else "none"
    tta = args.tta or current
    lender = registry.get(args.guard_model) if args.guard_model else None
    keeps_own_guard = lender is None and "guard" in meta
    if tta != current and keeps_own_guard:
        raise SystemExit(f"{info.name} keeps its own guard, fitted with tta={meta.get('tta')!r}: "
                         "refit it with ml.train --finalize-only --tta, or borrow a guard (--guard-model)")

    if args.tta is None and lender is None:
        raise SystemExit("nothing to do: give --tta and/or --guard-model")
    before = {k: meta.get("validation", {}).get(k) for k in ("accuracy", "macro_f1", "ece")}
    if args.tta is not None:
        from ml.training.finalize import calibrate
        from ml.model.predict import logits_and_features_model

        xv, yv = _validation_split(meta, args.data, args.cache_dir)
        dual = logits_and_features_model(registry.load_keras(info), meta["feature_layer"])
        temperature, validation, _ = calibrate(dual, xv, yv, tta)
        meta.update({"tta": tta, "temperature": temperature, "validation": validation})
    if lender is not None:
        meta = borrow_guard(meta, lender)
    command = "python -m ml.recalibrate " + shlex.join(argv if argv is not None else sys.argv[1:])
    meta["recalibrated"] = list(meta.get("recalibrated", [])) + [{
        "command": command, "seconds": round(time.time() - t0, 1), "before": before,
        "date": time.strftime("%Y-%m-%d", time.gmtime())}]
    after = {k: meta["validation"].get(k) for k in before}
    print(f"{info.name} {info.version}: tta {tta}, T {meta['temperature']:.4f}; before {before}; after {after}"
          + (f"; guard borrowed from {lender.name} {lender.version}" if lender else ""), flush=True)
    if not args.dry_run:
        (info.path / "metadata.json").write_text(json.dumps(meta, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
