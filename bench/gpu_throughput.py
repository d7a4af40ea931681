"""``python -m bench.gpu_throughput``: classify + Grad-CAM images/s at large batches.

    KERAS_BACKEND=jax python -m bench.gpu_throughput [--model xception] [--batches 32 128 512]

For a GPU machine with only jax and keras (no TensorFlow, no Django). Per batch size:

* graph: the fused JAX program alone (``analyzer.graph(x, saliency=False)``: forward,
  the model's TTA, backward to the Grad-CAM layer, the CAMs), prepared inputs on the
  host, timed to the arrays back on the host; what the accelerator can give;
* analyze: ``Analyzer.analyze(saliency=False, gradcam_pp=False, faithfulness=False)``,
  the worker's first pass on decoded images, with its stage split (preprocess, model,
  guard, maps, region: ms per image), in compiled calls of ``Analyzer._batch_cap``.

Images: ``--data`` (or BRAINAI_DATA_DIR / the shared training set) when there, else
synthetic head phantoms (rates do not depend on pixel values). Prints a table and, last,
one line of JSON. Benchmarks print figures; they never pass or fail.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_throughput", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model name (default: the default model)")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 128, 512])
    p.add_argument("--repeat", type=int, default=3, help="timed runs per figure; the best is kept")
    p.add_argument("--data", default=None, help="one-folder-per-class images (default: phantoms if none)")
    return p.parse_args(argv)


def images(n: int, size: int, data: str | None) -> list[np.ndarray]:
    """n (H, W) images in [0, 1]: dataset slices when a folder is there, else phantoms."""
    from ml.analysis.analyzer import _phantom

    try:
        from bench.inference import sample_files
        from ml.io.read import read_frames

        files = sample_files(data, n, 0)
        out = [read_frames(f)[0].pixels for f in files]
        return (out * (n // len(out) + 1))[:n]
    except (SystemExit, OSError):
        rng = np.random.default_rng(0)
        base = _phantom(size)
        return [np.clip(base + 0.05 * rng.random(base.shape, dtype=np.float32), 0, 1) for _ in range(n)]


def _best(fn, repeat: int) -> float:
    fn()  # compile and warm up at this shape
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(analyzer, imgs: list[np.ndarray], batch: int, repeat: int) -> dict:
    """The graph-only and the first-pass rates at one batch size, with the stage split."""
    from ml.model.preprocess import prepare

    x = np.stack([prepare(im, analyzer.size).x for im in imgs[:batch]])[..., None]      # (B, S, S, 1)
    graph_s = _best(lambda: analyzer.graph(x, saliency=False), repeat)
    flags = {"saliency": False, "gradcam_pp": False, "faithfulness": False, "batch_size": batch}
    results = []
    analyze_s = _best(lambda: results.append(analyzer.analyze(imgs[:batch], **flags)), repeat)
    last = results[-1]
    stages = {k: 1e3 * statistics.mean(r.timings[k] for r in last)
              for k in ("preprocess", "model", "guard", "maps", "region")}
    return {"batch": batch, "compiled_call": analyzer._batch_cap(batch),
            "graph_images_per_s": round(batch / graph_s, 1), "analyze_images_per_s": round(batch / analyze_s, 1),
            "stage_ms_per_image": {k: round(v, 3) for k, v in stages.items()}}


def main(argv=None) -> int:
    args = parse_args(argv)
    import keras

    from ml.analysis.analyzer import Analyzer
    from ml.analysis.device import default_pixel_budget

    analyzer = Analyzer.load(args.model)
    imgs = images(max(args.batches), analyzer.size, args.data)
    backend = keras.backend.backend()
    device = "cpu"
    if backend == "jax":
        import jax

        device = jax.devices()[0].device_kind
    rows = [measure(analyzer, imgs, b, args.repeat) for b in args.batches]
    print(f"model {analyzer.name} {analyzer.version}, {analyzer.size} px, TTA {'flip' if analyzer.tta else 'none'}; "
          f"Keras {keras.__version__} on {backend} ({device}); host {platform.machine()}, {os.cpu_count()} cores; "
          f"pixel budget per call {default_pixel_budget():,}; bfloat16 {analyzer.bfloat16}")
    print("| batch | compiled call | graph images/s | analyze images/s | "
          "preprocess | model | guard | maps | region (ms/image) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        st = r["stage_ms_per_image"]
        print(f"| {r['batch']} | {r['compiled_call']} | {r['graph_images_per_s']} | {r['analyze_images_per_s']} | "
              + " | ".join(f"{st[k]:.2f}" for k in ("preprocess", "model", "guard", "maps", "region")) + " |")
    print(json.dumps({"bench": "gpu_throughput", "model": analyzer.name, "version": analyzer.version,
                      "backend": backend, "device": device, "bfloat16": analyzer.bfloat16, "cpu_count": os.cpu_count(),
                      "python": sys.version.split()[0], "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
