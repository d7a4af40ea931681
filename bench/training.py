"""``python -m bench.training``: training throughput of an architecture on this machine.

Times ``train_on_batch`` (forward, backward, AdamW update) on random inputs after a
warm-up, and prints images/s with what it implies for one epoch of the 5,137 training
images and for a whole schedule. Benchmarks print figures; they never pass or fail.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="xception", choices=("cnn", "xception"))
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=4, help="timed steps after one warm-up step")
    p.add_argument("--epochs", type=int, default=30, help="for the implied schedule time")
    p.add_argument("--train-images", type=int, default=5137)
    args = p.parse_args(argv)

    import keras

    from ml.model.builders import build_model
    from ml.training.train import compile_for_training

    size = args.input_size or (160 if args.arch == "cnn" else 299)
    model = build_model(args.arch, size)
    compile_for_training(model, lr=1e-3, weight_decay=1e-4, label_smoothing=0.05,
                         steps_per_epoch=100, epochs=args.epochs)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch_size, size, size, 1), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 4, args.batch_size), 4)
    model.train_on_batch(x, y)                          # warm-up: tracing and allocation
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    step = float(np.median(times))
    rate = args.batch_size / step
    epoch_min = args.train_images / rate / 60
    print(f"{args.arch} at {size} px, batch {args.batch_size}, backend {keras.backend.backend()}, "
          f"{os.cpu_count()} cores ({platform.machine()}): {step:.2f} s a step, {rate:.2f} images/s")
    print(f"one epoch of {args.train_images} images: {epoch_min:.1f} min; {args.epochs} epochs: "
          f"{epoch_min * args.epochs / 60:.1f} h (augmentation and validation not included)")
    print(json.dumps({"arch": args.arch, "input_size": size, "batch_size": args.batch_size,
                      "step_s": round(step, 3), "images_per_s": round(rate, 2),
                      "epoch_min": round(epoch_min, 1), "schedule_h": round(epoch_min * args.epochs / 60, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
