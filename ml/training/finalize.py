"""After fitting: calibrate, fit the input guard, measure, and write metadata.json."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from ml.evaluation import metrics
from ml.guard.input_guard import InputGuard, image_stats
from ml.labels import CLASSES
from ml.model import calibration
from ml.model.builders import feature_layer, target_layer
from ml.model.predict import TTA, logits_and_features_model, predict_logits_features
from ml.model.preprocess import PREPROCESSING_VERSION, prepare


def _as_float(x_uint8: np.ndarray) -> np.ndarray:
    return (x_uint8.astype(np.float32) / 255.0)[..., None]


def evaluate_guard(guard: InputGuard, dual, size: int, val_x: np.ndarray, val_feats: np.ndarray,
                   tta: bool = True) -> dict:
    """False rejects on validation, AUROC against the offline foreign set, per-item verdicts."""
    from ml.guard.ood_set import build_ood_set, matplotlib_brain_mri

    # The validation slices' originals are JPEGs already reduced to x; assess reads x only.
    val_scores = np.array([guard.assess(x, x, f).score for f, x in zip(val_feats, val_x)])
    items = build_ood_set()
    prepared = [prepare(it.image, size) for it in items]
    xs = np.stack([p.x for p in prepared])[..., None]
    _, feats = predict_logits_features(dual, xs)
    ood = []
    for it, p, f in zip(items, prepared, feats):
        v = guard.assess(it.image, p.x, f, meta=it.meta)
        ood.append({"name": it.name, "kind": it.kind, "score": round(v.score, 4),
                    "rejected": not v.in_distribution, "reasons": v.reasons})
    ood_scores = np.array([o["score"] for o in ood])
    probe = matplotlib_brain_mri()
    probe_verdict = None
    if probe is not None:
        pp = prepare(probe, size)
        _, pf = predict_logits_features(dual, pp.x[None, ..., None])
        probe_verdict = guard.assess(probe, pp.x, pf[0]).as_dict()
    return {
        "n_validation": int(len(val_scores)),
        "false_reject_rate": float(np.mean(val_scores > 1.0)),
        "n_ood": len(ood),
        "ood_reject_rate": float(np.mean(ood_scores > 1.0)),
        "auroc": metrics.auroc(val_scores, ood_scores),
        "ood_items": ood,
        "matplotlib_mri_probe": probe_verdict,
    }


def _check_tta(tta: str) -> bool:
    if tta not in ("hflip", "none"):
        raise ValueError(f"tta must be 'hflip' or 'none', received: {tta!r}")
    return tta == "hflip"


def calibrate(dual, xv: np.ndarray, y_va: np.ndarray, tta: str = TTA) -> tuple[float, dict, np.ndarray]:
    """Fit the temperature on validation, predicting as the product will (``tta``).

    Args:
        dual: from :func:`ml.model.predict.logits_and_features_model`.
        xv: (N, S, S, 1) float32 validation inputs; y_va: (N,) labels.

    Returns:
        (temperature, validation metrics, validation features). The metrics hold the
        accuracy the other TTA choice would give, for the record.
    """
    flip = _check_tta(tta)
    val_logits, val_feats = predict_logits_features(dual, xv, tta=flip)
    val_logits_other, _ = predict_logits_features(dual, xv, tta=not flip)
    temperature = calibration.fit_temperature(val_logits, y_va)
    p_raw, p_cal = calibration.softmax(val_logits), calibration.softmax(val_logits, temperature)
    other = metrics.accuracy(y_va, val_logits_other.argmax(1))
    validation = metrics.summary(y_va, p_cal.argmax(1))
    validation.update({
        ("accuracy_without_tta" if flip else "accuracy_with_hflip_tta"): other,
        "ece_uncalibrated": calibration.expected_calibration_error(p_raw, y_va),
        "ece": calibration.expected_calibration_error(p_cal, y_va),
        "nll_uncalibrated": calibration.nll(val_logits, y_va, 1.0),
        "nll": calibration.nll(val_logits, y_va, temperature),
    })
    print(f"validation: accuracy {validation['accuracy']:.4f} (TTA {tta}; the other way {other:.4f}), "
          f"ECE {validation['ece_uncalibrated']:.4f} -> {validation['ece']:.4f} at T={temperature:.3f}", flush=True)
    return temperature, validation, val_feats


def finalize(model, out: Path, *, arch: str, name: str, size: int, x_tr, y_tr, x_va, y_va,
             manifest: str, seed: int, train_seconds: float, history: dict, args: dict,
             n_items: int, split: tuple[int, int], n_synthetic: int = 0, tta: str = TTA) -> dict:
    """Calibrate on validation, fit the guard, and write ``out/metadata.json``.

    ``tta``: ``"hflip"`` (average the image and its mirror) or ``"none"``; the temperature
    is fitted, and the validation figures measured, the way the product will predict.

    Returns:
        The metadata dict that was written.
    """
    t0 = time.time()
    dual = logits_and_features_model(model, feature_layer(arch))
    flip = _check_tta(tta)
    temperature, validation, val_feats = calibrate(dual, _as_float(x_va), y_va, tta)

    _, tr_feats = predict_logits_features(dual, _as_float(x_tr), tta=flip)
    tr_stats = [image_stats(x.astype(np.float32) / 255.0) for x in x_tr]
    va_stats = [image_stats(x.astype(np.float32) / 255.0) for x in x_va]
    guard = InputGuard.fit(tr_feats, np.asarray(y_tr), tr_stats, val_feats, va_stats)
    guard_eval = evaluate_guard(guard, dual, size, x_va.astype(np.float32) / 255.0, val_feats, tta=flip)
    print(f"guard: AUROC {guard_eval['auroc']:.4f}, false rejects {guard_eval['false_reject_rate']:.4f}, "
          f"foreign rejected {guard_eval['ood_reject_rate']:.4f} of {guard_eval['n_ood']}", flush=True)

    import keras
    import tensorflow as tf

    meta = {
        "name": name,
        "arch": arch,
        "input_size": size,
        "input_channels": 1,
        "classes": list(CLASSES),
        "parameters": int(model.count_params()),
        "preprocessing": {"version": PREPROCESSING_VERSION, "function": "ml.model.preprocess.prepare",
                          "output": "logits"},
        "tta": tta,
        "target_layer": target_layer(arch),
        "feature_layer": feature_layer(arch),
        "temperature": temperature,
        "dataset": {"manifest_sha256": manifest, "n_images": n_items,
                    "n_train": split[0], "n_validation": split[1],
                    "split": "stratified, grouped by file sha256", "val_fraction": args.get("val_fraction")},
        "validation": validation,
        "guard": guard.to_metadata(),
        "guard_evaluation": guard_eval,
        "training": {"seconds": round(train_seconds, 1), "seed": seed, "n_synthetic": n_synthetic, "epochs_run": len(history.get("loss", [])),
                     "history": history, "args": {k: v for k, v in args.items() if k != "finalize_only"},
                     "machine": platform.processor() or platform.machine(),
                     "tensorflow": tf.__version__, "keras": keras.__version__},
        "seed": seed,
        "finalize_seconds": round(time.time() - t0, 1),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=1, default=float))
    return meta
