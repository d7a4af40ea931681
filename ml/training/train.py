"""``python -m ml.train``: train a classifier on a one-folder-per-class directory.

Saves ``model.keras``, ``metadata.json`` and ``training_curves.png`` in --out.
After fitting it calibrates (temperature scaling) and fits the input guard on the
validation split; ``--finalize-only`` reruns just those steps on a saved model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from ml.data import dataset as mldata
from ml.labels import CLASSES
from ml.model.builders import ARCHITECTURES


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__)
    p.add_argument("--data", default=str(mldata.default_data_dir()), help="one folder per class")
    p.add_argument("--arch", choices=ARCHITECTURES, default="cnn")
    p.add_argument("--out", required=True, help="output folder for model.keras and metadata.json")
    p.add_argument("--name", default=None, help="model name in metadata (default: the arch)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--input-size", type=int, default=None, help="default 128 (cnn), 299 (xception)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--patience", type=int, default=8, help="early-stopping patience (epochs)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--no-augment", action="store_true", help="disable classic augmentation")
    p.add_argument("--imagenet-weights", default=None, help="local Xception ImageNet weights (.h5)")
    p.add_argument("--synthetic", default=None, help="folder of generated images, one folder per class")
    p.add_argument("--synthetic-ratio", type=float, default=0.0,
                   help="synthetic images added per real training image (e.g. 0.25)")
    p.add_argument("--limit", type=int, default=None, help="use at most N images (smoke runs)")
    p.add_argument("--cache-dir", default="var/cache")
    p.add_argument("--tta", choices=("hflip", "none"), default="hflip",
                   help="test-time augmentation the product will use (calibrated that way)")
    p.add_argument("--teacher", default=None,
                   help="distil from this shipped model (e.g. xception): see ml/training/distill.py")
    p.add_argument("--kd-alpha", type=float, default=0.5, help="weight of the teacher's term")
    p.add_argument("--kd-temperature", type=float, default=3.0, help="softening temperature tau")
    p.add_argument("--deletion-rate", type=float, default=0.0,
                   help="share of training images with a random part of the head removed and imputed as "
                        "the faithfulness metric does (ml.training.augment.deletion; 0 = off)")
    p.add_argument("--deletion-max-fraction", type=float, default=1.0,
                   help="largest removed share of the head (uniform in [0, this])")
    p.add_argument("--init-from", default=None,
                   help="start from this model.keras, or a model folder or shipped name (a packed "
                        "weights.npz too) (fine-tuning: no warm-up, cosine from --lr)")
    p.add_argument("--fit-only", action="store_true",
                   help="save model.keras after fitting and stop (pack it, then --finalize-only on the packed weights)")
    p.add_argument("--finalize-only", action="store_true",
                   help="skip fitting: recalibrate and refit the guard for --out/model.keras")
    args = p.parse_args(argv)
    if args.synthetic_ratio < 0:
        p.error(f"--synthetic-ratio must be >= 0, received: {args.synthetic_ratio}")
    if args.synthetic_ratio > 0 and not args.synthetic:
        p.error("--synthetic-ratio needs --synthetic DIR")
    return args


def _synthetic_arrays(args, n_train, size):
    if not args.synthetic or args.synthetic_ratio <= 0:
        return None, None
    items = mldata.scan(args.synthetic)
    want = int(round(args.synthetic_ratio * n_train))
    items = mldata.subsample(items, min(want, len(items)), args.seed + 1)
    x = mldata.load_arrays(items, size, cache_dir=args.cache_dir)
    return x, np.array([it.label for it in items])


def _initial_model(source: str):
    """The model to fine-tune from: a ``.keras`` file, or a model folder or name (registry)."""
    import keras

    if str(source).endswith(".keras"):
        return keras.models.load_model(source, compile=False)
    from ml.model import registry

    return registry.load_keras(registry.get(source))


def _weights_version(source: str) -> str:
    """First 12 hex digits of the sha256 of the weights file a fine-tune starts from."""
    from ml.model import registry

    if str(source).endswith(".keras"):
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:12]
    return registry.get(source).version


def make_datasets(x_tr, y_tr, x_va, y_va, batch: int, augment: bool, seed: int, w_tr=None,
                  deletion: tuple[float, float] = (0.0, 1.0)):
    """tf.data pipelines. y: (N,) class indices (one-hot encoded here) or (N, K) float
    targets passed through as they are (distillation); w_tr: optional (N,) sample weights;
    deletion: (rate, max_fraction) of :func:`ml.training.augment.deletion.random_deletion`, after
    the classic augmentation (rate 0: off)."""
    import tensorflow as tf

    from ml.training.augment.tf_data import augment_batch

    n_cls = len(CLASSES)

    def to_float(x, y, *w):
        x = tf.cast(x, tf.float32)[..., None] / 255.0
        y = tf.one_hot(y, n_cls) if y.dtype.is_integer else tf.cast(y, tf.float32)
        return (x, y, *w)

    slices = (x_tr, y_tr) if w_tr is None else (x_tr, y_tr, np.asarray(w_tr, np.float32))
    train = (tf.data.Dataset.from_tensor_slices(slices)
             .shuffle(len(x_tr), seed=seed, reshuffle_each_iteration=True)
             .batch(batch, drop_remainder=True).map(to_float, num_parallel_calls=2))
    if augment:
        train = train.map(lambda x, *rest: (augment_batch(x), *rest), num_parallel_calls=2)
    if deletion[0] > 0:
        from ml.training.augment.deletion import random_deletion

        rate, most = deletion
        train = train.map(lambda x, *rest: (random_deletion(x, rate=rate, max_fraction=most), *rest),
                          num_parallel_calls=2)
    train = train.prefetch(2)
    val = tf.data.Dataset.from_tensor_slices((x_va, y_va)).batch(64).map(to_float).prefetch(2)
    return train, val


def plot_curves(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", axes[0]), ("accuracy", axes[1])):
        ax.plot(history.get(key, []), label=f"train {key}")
        ax.plot(history.get(f"val_{key}", []), label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def compile_for_training(model, *, lr: float, weight_decay: float, label_smoothing: float,
                         steps_per_epoch: int, epochs: int, fine_tune: bool = False,
                         loss=None, metrics=None) -> None:
    """AdamW, cosine decay (after one warm-up epoch unless fine-tuning), smoothed CE on
    logits (or ``loss`` and ``metrics`` when given, e.g. distillation's)."""
    import keras

    total = steps_per_epoch * epochs
    if fine_tune:  # already warm, decay from lr
        schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(total, 1), alpha=0.01)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / 20, decay_steps=max(total - steps_per_epoch, 1),
            alpha=0.01, warmup_target=lr, warmup_steps=steps_per_epoch,
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
        loss=loss or keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing),
        metrics=metrics or ["accuracy"],
    )


def class_weights(y: np.ndarray) -> dict[int, float]:
    """'Balanced' class weights: n / (classes * count) for each class present."""
    counts = np.bincount(y, minlength=len(CLASSES))
    return {i: float(len(y) / (len(CLASSES) * c)) for i, c in enumerate(counts) if c}


def fit(args, model, x_tr, y_tr, x_va, y_va, teacher=None):
    """Fit ``model``; ``teacher``: (train, validation) teacher logits to distil from."""
    import keras

    class_weight = class_weights(y_tr)
    kd, n = {}, len(CLASSES)
    deletion = (args.deletion_rate, args.deletion_max_fraction)
    if teacher is None:
        train, val = make_datasets(x_tr, y_tr, x_va, y_va, args.batch_size, not args.no_augment, args.seed,
                                   deletion=deletion)
    else:  # Keras reads class_weight off the target's argmax: pass them as sample weights
        from ml.training import distill

        kd = {"loss": distill.kd_loss(n, args.kd_alpha, args.kd_temperature, args.label_smoothing),
              "metrics": [distill.label_accuracy(n)]}
        w_tr = np.array([class_weight[int(c)] for c in y_tr], np.float32)
        train, val = make_datasets(x_tr, distill.targets(y_tr, teacher[0], n), x_va,
                                   distill.targets(y_va, teacher[1], n),
                                   args.batch_size, not args.no_augment, args.seed, w_tr=w_tr,
                                   deletion=deletion)
        class_weight = None
    compile_for_training(model, lr=args.lr, weight_decay=args.weight_decay,
                         label_smoothing=args.label_smoothing,
                         steps_per_epoch=len(x_tr) // args.batch_size, epochs=args.epochs,
                         fine_tune=bool(args.init_from), **kd)
    out = Path(args.out)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True),
        keras.callbacks.ModelCheckpoint(str(out / "checkpoint.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv")),
    ]
    hist = model.fit(train, validation_data=val, epochs=args.epochs, class_weight=class_weight,
                     callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    return hist.history


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    from ml.model.builders import build_model

    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = args.input_size or (128 if args.arch == "cnn" else 299)

    t0 = time.time()
    items = mldata.subsample(mldata.scan(args.data), args.limit, args.seed)
    manifest = mldata.manifest_sha256(items, args.data)
    train_idx, val_idx = mldata.grouped_split(items, args.val_fraction, args.seed)
    x = mldata.load_arrays(items, size, cache_dir=args.cache_dir)
    y = np.array([it.label for it in items])
    x_tr, y_tr, x_va, y_va = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    xs, ys = _synthetic_arrays(args, len(x_tr), size)
    if xs is not None:
        x_tr, y_tr = np.concatenate([x_tr, xs]), np.concatenate([y_tr, ys])
    print(f"data: {len(items)} images ({len(train_idx)} train, {len(val_idx)} validation"
          f"{f', +{len(xs)} synthetic' if xs is not None else ''}); manifest {manifest[:12]}", flush=True)

    history: dict = {}
    train_seconds = 0.0
    if args.finalize_only:
        model = keras.models.load_model(out / "model.keras")
        prev = json.loads((out / "metadata.json").read_text()) if (out / "metadata.json").exists() else {}
        fitted = prev.get("training") or (json.loads((out / "fit.json").read_text())
                                          if (out / "fit.json").exists() else {})   # from --fit-only
        train_seconds = fitted.get("seconds", 0.0)
        history = fitted.get("history", {})
    else:
        build_kwargs = {"imagenet_weights": args.imagenet_weights} if args.arch == "xception" else {}
        model = build_model(args.arch, size, **build_kwargs)
        if args.init_from:
            model.set_weights(_initial_model(args.init_from).get_weights())
            args.init_from_version = _weights_version(args.init_from)     # recorded in training.args
        print(f"model: {args.arch}, {model.count_params():,} parameters, input {size}px", flush=True)
        teacher = None
        if args.teacher:
            from ml.training.distill import teacher_logits

            if xs is not None:
                raise SystemExit("--teacher with --synthetic is not supported")
            t = teacher_logits(args.teacher, items, args.cache_dir)
            teacher = (t[train_idx], t[val_idx])
            print(f"teacher {args.teacher}: accuracy on the training split "
                  f"{np.mean(t[train_idx].argmax(1) == y_tr):.4f}, validation "
                  f"{np.mean(t[val_idx].argmax(1) == y_va):.4f}", flush=True)
        t_fit = time.time()  # the teacher's pass is not fitting: it is in the command's total
        history = fit(args, model, x_tr, y_tr, x_va, y_va, teacher)
        train_seconds = time.time() - t_fit
        model.save(out / "model.keras")
        plot_curves(history, out / "training_curves.png")
        if args.fit_only:
            (out / "fit.json").write_text(json.dumps({"seconds": train_seconds, "history": history,
                                                      "args": vars(args)}, indent=1, default=str))
            print(f"fitted in {train_seconds:.0f} s -> {out / 'model.keras'} (not finalized)", flush=True)
            return 0

    from ml.training.finalize import finalize

    meta = finalize(
        model, out, arch=args.arch, name=args.name or args.arch, size=size,
        x_tr=x_tr, y_tr=y_tr, x_va=x_va, y_va=y_va, manifest=manifest, seed=args.seed,
        train_seconds=train_seconds, history=history, args=vars(args),
        n_items=len(items), split=(len(train_idx), len(val_idx)),
        n_synthetic=0 if xs is None else len(xs), tta=args.tta,
    )
    print(json.dumps(meta["validation"], indent=1), flush=True)
    print(f"done in {time.time() - t0:.0f} s -> {out}", flush=True)
    ckpt = out / "checkpoint.keras"
    if ckpt.exists():
        ckpt.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
