"""``python -m research.sweep``: compare training recipes quickly, on any Keras backend.

A research tool, not the product's training command (that is :mod:`ml.training.train`). It
trains named recipe variants on pre-decoded arrays (written by ``--export``, so the
images need not travel) with the same split, augmentation, class weights, optimiser,
schedule and best-epoch rule as :mod:`ml.training.train`, and scores each on the validation split
with and without the test-time left-right flip. On the GPU machine (JAX backend, no
TensorFlow) a 26-epoch run takes well under a minute, so a recipe can be compared over
several seeds before a 70-minute CPU run is spent on it.

    python -m research.sweep --export var/sweep/data.npz --sizes 128 160 192     # here, once
    KERAS_BACKEND=jax python -m research.sweep --arrays var/sweep/data.npz \\
        --variants base160 wide160 --seeds 1 2 3 --out var/sweep/runs       # GPU
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ml.labels import CLASSES

# name -> (builder, input size, epochs, lr). Builders take the input size.
VARIANTS = {
    "base160": ("cnn", 160, 26, 2e-3),          # the shipped recipe (make train)
    "base160_e33": ("cnn", 160, 33, 2e-3),
    "base128": ("cnn", 128, 26, 2e-3),
    "base192": ("cnn", 192, 22, 2e-3),
    "wide160": ("cnn_wide", 160, 26, 2e-3),
    "plain128": ("plain", 128, 18, 2e-3),       # ../shared/CPU-FACTS.md's plain recipe
    "plain160": ("plain", 160, 26, 2e-3),
    "xception299": ("xception", 299, 30, 1e-3),  # from scratch: no ImageNet file offline
}


def build(kind: str, size: int):
    import keras
    from keras import layers

    from ml.model.builders import build_cnn

    if kind == "cnn":
        return build_cnn(size)
    if kind == "xception":
        from ml.model.builders import build_xception

        return build_xception(size)
    if kind == "cnn_wide":
        return build_cnn(size, widths=(32, 64, 128, 384, 768))
    if kind == "plain":  # stride-2 stem, 4 blocks of two plain 3x3 convs, 1.2M parameters
        inputs = keras.Input((size, size, 1), name="image")
        x = inputs
        for name, w, s in (("stem", 32, 2),):
            x = layers.Conv2D(w, 3, strides=s, padding="same", use_bias=False, name=f"{name}_conv")(x)
            x = layers.ReLU(name=f"{name}_act")(layers.BatchNormalization(name=f"{name}_bn")(x))
        for i, w in enumerate((32, 64, 128, 256), start=1):
            for j in (1, 2):
                x = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"block{i}_{j}_conv")(x)
                x = layers.ReLU(name=f"block{i}_{j}_act")(layers.BatchNormalization(name=f"block{i}_{j}_bn")(x))
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = layers.GlobalAveragePooling2D(name="features")(x)
        x = layers.Dropout(0.3, name="head_dropout")(x)
        return keras.Model(inputs, layers.Dense(len(CLASSES), name="logits")(x), name="plain")
    raise ValueError(f"unknown builder {kind!r}")


def export(path: str, sizes: list[int], data: str | None = None, cache_dir: str = "var/cache") -> None:
    """Decode the dataset once per size into one compressed .npz with the split."""
    from ml.data import dataset as mldata

    items = mldata.scan(data or mldata.default_data_dir())
    train_idx, val_idx = mldata.grouped_split(items, 0.1, 1337)
    out = {"y": np.array([it.label for it in items]), "train_idx": train_idx, "val_idx": val_idx}
    for s in sizes:
        out[f"x{s}"] = mldata.load_arrays(items, s, cache_dir=cache_dir)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    print(f"wrote {path}: {len(items)} images, sizes {sizes}")


class TimeLimit:
    """Stop a fit (at an epoch's end) once it has run for ``minutes``: a safety net for a lease."""

    def __new__(cls, minutes: float):
        import keras

        class _Limit(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.t0 = time.time()

            def on_epoch_end(self, epoch, logs=None):
                if time.time() - self.t0 > 60 * minutes:
                    print(f"time limit: stopping after epoch {epoch + 1}", flush=True)
                    self.model.stop_training = True

        return _Limit()


def save_weights_npz(model, folder: Path, stem: str, chunk_mb: float = 15.0) -> list[Path]:
    """Every weight as float16, keyed by position with its path, split into chunk_mb parts
    (the GPU lease returns files of at most 16 MiB). Join with ``cat stem.npz.part*``."""
    import io

    buf = io.BytesIO()
    np.savez(buf, paths=np.array([v.path for v in model.weights]),
             **{f"w{i:04d}": np.asarray(v.numpy(), np.float16) for i, v in enumerate(model.weights)})
    data, step = buf.getvalue(), int(chunk_mb * 1e6)
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for k in range(0, len(data), step):
        parts.append(folder / f"{stem}.npz.part{k // step}")
        parts[-1].write_bytes(data[k:k + step])
    return parts


def run_one(arrays, variant: str, seed: int, batch: int = 32, save: Path | None = None,
            time_limit_min: float | None = None, verbose: int = 0, save_npz: Path | None = None,
            deletion_rate: float = 0.0) -> dict:
    import keras

    from ml.training.augment.keras_layer import Augment, RandomDeletion
    from ml.training.train import compile_for_training, class_weights

    kind, size, epochs, lr = VARIANTS[variant]
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    x = arrays[f"x{size}"].astype(np.float32)[..., None] / 255.0
    y = arrays["y"]
    tr, va = arrays["train_idx"], arrays["val_idx"]
    model = build(kind, size)
    removal = [RandomDeletion(deletion_rate, seed=seed + 1, dtype="float32")] if deletion_rate > 0 else []
    wrapper = keras.Sequential([keras.Input((size, size, 1)), Augment(seed=seed, dtype="float32"), *removal, model])
    steps = -(-len(tr) // batch)
    compile_for_training(wrapper, lr=lr, weight_decay=1e-4, label_smoothing=0.05,
                         steps_per_epoch=steps, epochs=epochs)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10_000, restore_best_weights=True)
    y1 = keras.utils.to_categorical(y, len(CLASSES))
    t0 = time.time()
    hist = wrapper.fit(x[tr], y1[tr], validation_data=(x[va], y1[va]), batch_size=batch,
                       epochs=epochs, shuffle=True, class_weight=class_weights(y[tr]),
                       callbacks=[stop] + ([TimeLimit(time_limit_min)] if time_limit_min else []),
                       verbose=verbose)
    seconds = time.time() - t0
    logits = model.predict(x[va], batch_size=256, verbose=0)
    logits_flip = model.predict(x[va][:, :, ::-1], batch_size=256, verbose=0)
    pred, pred_tta = logits.argmax(1), (0.5 * (logits + logits_flip)).argmax(1)
    yv = y[va]
    recall = [float((pred_tta[yv == c] == c).mean()) for c in range(len(CLASSES))]
    best = int(np.argmin(hist.history["val_loss"])) + 1
    if save:
        save.mkdir(parents=True, exist_ok=True)
        model.save(save / f"{variant}-s{seed}.keras")
    if save_npz:
        save_weights_npz(model, save_npz, f"{variant}-s{seed}")
    return {"variant": variant, "seed": seed, "deletion_rate": deletion_rate, "params": int(model.count_params()),
            "epochs": len(hist.history["val_loss"]), "best_epoch": best, "fit_s": round(seconds, 1),
            "acc": float((pred == yv).mean()), "acc_tta": float((pred_tta == yv).mean()),
            "errors_tta": int((pred_tta != yv).sum()), "recall_tta": [round(r, 4) for r in recall]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.sweep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", help="write the decoded arrays and split to this .npz and stop")
    p.add_argument("--sizes", type=int, nargs="+", default=[160])
    p.add_argument("--arrays", help="the .npz written by --export")
    p.add_argument("--variants", nargs="+", default=["base160"], choices=sorted(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1])
    p.add_argument("--out", default="var/sweep/runs")
    p.add_argument("--save", action="store_true", help="save every run's model.keras")
    p.add_argument("--save-npz", action="store_true",
                   help="save every run's weights as float16 .npz parts (for a GPU lease)")
    p.add_argument("--mixed-bf16", action="store_true", help="mixed_bfloat16 policy (GPU)")
    p.add_argument("--time-limit-min", type=float, default=None, help="per-run fit limit")
    p.add_argument("--verbose", type=int, default=0)
    p.add_argument("--deletion-rate", type=float, default=0.0,
                   help="remove-and-retrain: share of images with random removals (ml.training.augment.keras_layer.RandomDeletion)")
    p.add_argument("--cache-dir", default="var/cache", help="decoded-array cache for --export")
    p.add_argument("--budget-min", type=float, default=None, help="start no run after this")
    args = p.parse_args(argv)
    if args.export:
        export(args.export, args.sizes, cache_dir=args.cache_dir)
        return 0
    if not args.arrays:
        p.error("--arrays is required (or --export)")
    arrays = dict(np.load(args.arrays))
    if args.mixed_bf16:
        import keras

        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, rows = time.time(), []
    for seed in args.seeds:               # seed-major: a cut-off sweep still compares variants
        for variant in args.variants:
            if args.budget_min and time.time() - t0 > 60 * args.budget_min:
                print(f"budget reached: skipping {variant} seed {seed}", flush=True)
                continue
            row = run_one(arrays, variant, seed, save=out if args.save else None,
                          time_limit_min=args.time_limit_min, verbose=args.verbose,
                          save_npz=out if args.save_npz else None, deletion_rate=args.deletion_rate)
            rows.append(row)
            print(json.dumps(row), flush=True)
            with open(out / "runs.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
    print(f"\n{'variant':<14}{'runs':>5}{'acc':>8}{'acc_tta':>9}{'min':>8}{'max':>8}{'fit_s':>8}")
    for variant in args.variants:
        r = [row for row in rows if row["variant"] == variant]
        if r:
            a = [row["acc_tta"] for row in r]
            print(f"{variant:<14}{len(r):>5}{np.mean([row['acc'] for row in r]):>8.4f}"
                  f"{np.mean(a):>9.4f}{min(a):>8.4f}{max(a):>8.4f}{np.mean([row['fit_s'] for row in r]):>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
