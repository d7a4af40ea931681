"""``python -m bench.inference``: how fast is classify + Grad-CAM, fused, against the naive way?

Prints a table and, last, one line of JSON::

    {"images_per_s": ..., "naive_images_per_s": ..., "speedup": ..., "gflops_per_image": ...,
     "peak_gflops": ..., "efficiency": ..., ...}

* images_per_s: ``Analyzer.analyze(saliency=False, gradcam_pp=False, faithfulness=False)``
  at batch 32 (classification with the model's own TTA: the flip for `cnn`, none for
  `xception`; guard, Grad-CAM mapped onto the original, region descriptor), images already decoded; also at batch 1 and 8, and the full worker
  configuration (saliency, Grad-CAM++, per-case faithfulness).
* naive_images_per_s: the seed's way, per image: preprocess, ``model.predict``, then a
  separate gradient pass for Grad-CAM (a GradientTape under TensorFlow, an uncompiled
  ``jax.grad`` under JAX), resized onto the original (no TTA: with a flip-TTA model it
  does half the fused path's model work).
* gflops_per_image: one forward pass, counting 2 FLOPs per multiply-add of the
  convolutions and dense layers. The fused path runs 1 forward pass per image, 2 with the
  flip TTA (the image and its mirror), plus a backward pass to the last block, so its
  achieved GFLOP/s is images_per_s x passes x gflops_per_image (the backward to the
  target layer is < 0.1%).
* peak_gflops: the best fp32 matmul rate of numpy and of the Keras backend's library
  (TensorFlow, or jax.numpy at full fp32 precision on JAX's default device).
* efficiency: achieved / peak.
* backend, device: the Keras backend and the device it computes on.

Runs under the TensorFlow (default) and the JAX backend (``KERAS_BACKEND=jax``; no
TensorFlow needed then).

Also per-stage seconds per image: decode, preprocess, model, guard, map resize, saliency,
region, faithfulness, PNG encode. Benchmarks print figures; they never pass or fail.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None, help="model name or folder (default: the default model)")
    p.add_argument("--data", default=None, help="one-folder-per-class images (default: the training set)")
    p.add_argument("--n", type=int, default=64, help="images per throughput run")
    p.add_argument("--naive-n", type=int, default=24, help="images for the naive path")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is kept")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# ---- inputs --------------------------------------------------------------------------
def sample_files(data_dir: Path | None, n: int, seed: int) -> list[bytes]:
    """Raw bytes of n images spread over the classes (decoding is timed separately)."""
    from ml.data import dataset as mldata

    root = Path(data_dir) if data_dir else mldata.default_data_dir()
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in mldata.IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images under {root}; pass --data DIR")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(paths), min(n, len(paths)), replace=False)
    return [paths[i].read_bytes() for i in np.sort(pick)]


# ---- arithmetic ----------------------------------------------------------------------
def model_gflops(model) -> float:
    """Forward GFLOPs per image: 2 x multiply-adds of convolutions and dense layers."""
    from keras import layers

    total = 0.0
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:          # nested model (e.g. Xception)
            total += model_gflops(layer) * 1e9
            continue
        if not hasattr(layer, "output"):
            continue
        out = layer.output.shape
        if isinstance(layer, layers.SeparableConv2D):
            cin, (kh, kw) = layer.input.shape[-1], layer.kernel_size
            hw = out[1] * out[2]
            total += 2 * hw * kh * kw * cin * layer.depth_multiplier + 2 * hw * cin * layer.depth_multiplier * out[-1]
        elif isinstance(layer, layers.DepthwiseConv2D):
            cin, (kh, kw) = layer.input.shape[-1], layer.kernel_size
            total += 2 * out[1] * out[2] * kh * kw * cin * layer.depth_multiplier
        elif isinstance(layer, layers.Conv2D):
            cin, (kh, kw) = layer.input.shape[-1], layer.kernel_size
            total += 2 * out[1] * out[2] * kh * kw * cin * out[-1] / layer.groups
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * out[-1]
    return total / 1e9


def backend_device() -> tuple[str, str]:
    """The Keras backend and the device it computes on (e.g. ``jax``, ``NVIDIA H100 80GB HBM3``)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return backend, jax.devices()[0].device_kind
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return backend, tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return backend, f"cpu ({platform.processor() or platform.machine()})"


def matmul_peak(sizes=(1024, 2048, 3072), repeat: int = 7) -> dict:
    """Best fp32 matmul GFLOP/s of numpy and of the backend's library over a few square sizes.

    Under JAX the matmul runs on the default device at ``Precision.HIGHEST`` (true fp32,
    not TF32), timed to ``block_until_ready`` after a warm-up call; on an accelerator
    the sizes are larger, for the small ones do not fill it.
    """
    import keras

    best = {"numpy": 0.0}
    for n in sizes:
        a, b = _square_pair(n)
        a @ b
        best["numpy"] = max(best["numpy"], 2.0 * n ** 3 / min(_time(lambda: a @ b) for _ in range(repeat)) / 1e9)
    if keras.backend.backend() == "jax":
        best["jax"] = _jax_matmul_peak(sizes, repeat)
    else:
        best["tensorflow"] = _tf_matmul_peak(sizes, repeat)
    return best


def _square_pair(n: int) -> tuple[np.ndarray, np.ndarray]:
    return (np.random.default_rng(0).random((n, n), dtype=np.float32),
            np.random.default_rng(1).random((n, n), dtype=np.float32))


def _tf_matmul_peak(sizes, repeat: int) -> float:
    import tensorflow as tf

    mm = tf.function(lambda x, y: tf.matmul(x, y))
    best = 0.0
    for n in sizes:
        ta, tb = (tf.constant(m) for m in _square_pair(n))
        mm(ta, tb).numpy()
        best = max(best, 2.0 * n ** 3 / min(_time(lambda: mm(ta, tb).numpy()) for _ in range(repeat)) / 1e9)
    return best


def _jax_matmul_peak(sizes, repeat: int) -> float:
    import jax
    import jax.numpy as jnp

    device = jax.devices()[0]
    if device.platform != "cpu":
        sizes = (2048, 4096, 8192)
    mm = jax.jit(lambda x, y: jnp.matmul(x, y, precision=jax.lax.Precision.HIGHEST))
    best = 0.0
    for n in sizes:
        ja, jb = (jax.device_put(m, device) for m in _square_pair(n))
        mm(ja, jb).block_until_ready()                      # compile and warm up
        best = max(best, 2.0 * n ** 3 / min(_time(lambda: mm(ja, jb).block_until_ready())
                                            for _ in range(repeat)) / 1e9)
    return best


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ---- the two paths -------------------------------------------------------------------
def fused_rate(analyzer, images, batch: int, repeat: int, **flags) -> tuple[float, list]:
    """Images/s of Analyzer.analyze over images in batches of `batch` (best of repeat)."""
    def run():
        out = []
        for i in range(0, len(images), batch):
            out.extend(analyzer.analyze(images[i:i + batch], batch_size=batch, **flags))
        return out

    run()  # warm-up at this batch shape
    times, results = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        results = run()
        times.append(time.perf_counter() - t0)
    return len(images) / min(times), results


class NaivePath:
    """The seed's path (keras-io Grad-CAM example): per image, predict, then a tape pass.

    TensorFlow only; :class:`NaivePathJax` is the same path under JAX.
    """

    def __init__(self, model, target_layer: str, size: int):
        import keras

        self.model, self.size = model, size
        self.grad_model = keras.Model(model.inputs, [model.get_layer(target_layer).output, model.output])

    def __call__(self, image: np.ndarray) -> tuple[int, np.ndarray]:
        import tensorflow as tf

        from ml.model.preprocess import prepare, unprepare_map

        p = prepare(image, self.size)
        x = p.x[None, ..., None]
        preds = self.model.predict(x, verbose=0)
        cls = int(np.argmax(preds[0]))
        with tf.GradientTape() as tape:
            conv, out = self.grad_model(x)
            score = out[:, cls]
        grads = tape.gradient(score, conv)
        pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
        heat = tf.nn.relu(conv[0] @ pooled[..., None])[..., 0].numpy()
        heat = heat / (heat.max() + 1e-12)
        return cls, unprepare_map(heat, p)


class NaivePathJax:
    """The seed's path under JAX: per image, predict, then a separate, uncompiled
    ``jax.grad`` of the class logit with respect to the target activations (what a
    GradientTape pass is under TensorFlow: op by op, nothing fused)."""

    def __init__(self, model, target_layer: str, size: int):
        import keras

        self.model, self.size = model, size
        acts = model.get_layer(target_layer).output
        self.head = keras.Model(model.inputs, acts)                 # x -> (1, h, w, K)
        self.tail = keras.Model(acts, model.outputs[0])             # activations -> (1, C)

    def __call__(self, image: np.ndarray) -> tuple[int, np.ndarray]:
        import jax
        import jax.numpy as jnp

        from ml.model.preprocess import prepare, unprepare_map

        p = prepare(image, self.size)
        x = p.x[None, ..., None]
        preds = self.model.predict(x, verbose=0)
        cls = int(np.argmax(preds[0]))
        conv = self.head(x)
        grads = jax.grad(lambda a: self.tail(a)[0, cls])(conv)     # (1, h, w, K)
        pooled = jnp.mean(grads, axis=(0, 1, 2))
        heat = np.asarray(jax.nn.relu(conv[0] @ pooled[..., None])[..., 0])
        heat = heat / (heat.max() + 1e-12)
        return cls, unprepare_map(heat, p)


def naive_path(model, target_layer: str, size: int):
    """The naive path for the Keras backend in use."""
    import keras

    cls = NaivePathJax if keras.backend.backend() == "jax" else NaivePath
    return cls(model, target_layer, size)


def naive_rate(naive, images, repeat: int) -> float:
    naive(images[0])
    best = min(_time(lambda: [naive(im) for im in images]) for _ in range(max(1, repeat - 1)))
    return len(images) / best


def stage_timings(files, analyzer, results) -> dict:
    """Seconds per image for each stage, the model's stages from SliceResult.timings."""
    from ml.analysis.analyzer import STAGES
    from ml.explain.overlay import render_heatmap_png, render_overlay_png
    from ml.io.read import read_frames

    decode = min(_time(lambda: [read_frames(f) for f in files]) for _ in range(2)) / len(files)
    images = [read_frames(f)[0].pixels for f in files]
    t0 = time.perf_counter()
    for img, r in zip(images, results):
        render_overlay_png(img, r.gradcam)
        render_heatmap_png(r.gradcam)
        render_overlay_png(img, r.saliency, cmap="hot", alpha=0.7, alpha_by_value=True)
    png = (time.perf_counter() - t0) / len(images)
    stages = {"decode": decode}
    for k in STAGES:
        stages[k] = statistics.mean(r.timings[k] for r in results)
    stages["png_encode (3 PNGs)"] = png
    return stages


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Keras warns on every naive predict() that a 1-input model got a bare tensor.
    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
    from ml.model import registry
    from ml.analysis.analyzer import Analyzer
    from ml.io.read import read_frames

    info = registry.get(args.model)
    t0 = time.perf_counter()
    analyzer = Analyzer.load(args.model)
    load_s = time.perf_counter() - t0
    files = sample_files(Path(args.data) if args.data else None, args.n, args.seed)
    images = [read_frames(f)[0].pixels for f in files]
    light = {"saliency": False, "gradcam_pp": False, "faithfulness": False}
    full = {"saliency": True, "gradcam_pp": True, "faithfulness": True}

    rates = {}
    for b in args.batches:
        rates[b], _ = fused_rate(analyzer, images, b, args.repeat, **light)
        cap = analyzer._batch_cap(b)
        note = f" (compiled in calls of {cap}: BRAINAI_MAX_BATCH_PIXELS)" if cap != b else ""
        print(f"fused classify + Grad-CAM, batch {b:>3}: {rates[b]:8.1f} images/s{note}", flush=True)
    full_rate, full_results = fused_rate(analyzer, images, 32, args.repeat, **full)
    print(f"fused full analysis (saliency, Grad-CAM++, faithfulness), batch 32: {full_rate:.1f} images/s")
    no_faith_rate, _ = fused_rate(analyzer, images, 32, args.repeat,
                                  saliency=True, gradcam_pp=True, faithfulness=False)
    print(f"fused with saliency and Grad-CAM++, no faithfulness, batch 32: {no_faith_rate:.1f} images/s")

    model = registry.load_keras(info)
    naive = naive_path(model, analyzer.metadata["target_layer"], analyzer.size)
    naive_per_s = naive_rate(naive, images[:args.naive_n], args.repeat)
    print(f"naive seed-style (predict + separate gradient pass, per image): {naive_per_s:.1f} images/s",
          flush=True)

    gflops = model_gflops(model)
    peaks = matmul_peak()
    peak = max(peaks.values())
    backend, device = backend_device()
    grad_pass = "jax.grad" if backend == "jax" else "GradientTape"
    headline = rates.get(32, max(rates.values()))
    passes = 2 if analyzer.tta else 1
    achieved = headline * passes * gflops
    stages = stage_timings(files, analyzer, full_results)

    print()
    print(f"model {analyzer.name} {analyzer.version}: input {analyzer.size} px, "
          f"{model.count_params():,} parameters, {gflops:.3f} GFLOP per forward pass, TTA passes {passes}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"Keras backend {backend} on {device}; fp32 matmul peak "
          + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()) + " GFLOP/s")
    print()
    print(f"| path ({backend} on {device}) | images/s | vs naive |")
    print("|---|---|---|")
    print(f"| naive: per image predict + {grad_pass} Grad-CAM (no TTA) | {naive_per_s:.1f} | 1.0x |")
    for b, r in rates.items():
        print(f"| fused classify + Grad-CAM ({'flip TTA' if analyzer.tta else 'no TTA'}), batch {b} "
              f"| {r:.1f} | {r / naive_per_s:.1f}x |")
    print(f"| fused + saliency + Grad-CAM++, batch 32 | {no_faith_rate:.1f} | {no_faith_rate / naive_per_s:.1f}x |")
    print(f"| fused full worker analysis (+ faithfulness), batch 32 | {full_rate:.1f} | {full_rate / naive_per_s:.1f}x |")
    print()
    print("| stage (full analysis, batch 32) | ms per image |")
    print("|---|---|")
    for k, v in stages.items():
        print(f"| {k} | {1e3 * v:.2f} |")
    print(f"\nachieved {achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of the measured matmul peak; "
          f"model load + warm-up {load_s:.1f} s")
    summary = {
        "images_per_s": round(headline, 2), "naive_images_per_s": round(naive_per_s, 2),
        "speedup": round(headline / naive_per_s, 2), "gflops_per_image": round(gflops, 4),
        "peak_gflops": round(peak, 1), "efficiency": round(achieved / peak, 3),
        "images_per_s_by_batch": {str(b): round(r, 2) for b, r in rates.items()},
        "full_analysis_images_per_s": round(full_rate, 2),
        "saliency_no_faithfulness_images_per_s": round(no_faith_rate, 2),
        "model_passes_per_image": passes, "achieved_gflops": round(achieved, 1),
        "peak_by_library": {k: round(v, 1) for k, v in peaks.items()},
        "stage_ms_per_image": {k: round(1e3 * v, 3) for k, v in stages.items()},
        "model": {"name": analyzer.name, "version": analyzer.version, "input_size": analyzer.size},
        "n_images": len(images), "cpu_count": os.cpu_count(), "python": sys.version.split()[0],
        "backend": backend, "device": device,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
