"""Weights stored as int8 with a float scale per output channel: ``weights.npz``.

Xception has 21M parameters: 84 MB as float32, over the 20 MB a weights file may take in
the repository. Its convolution and dense kernels are stored here as symmetric int8
with one float32 scale per output channel (the last axis), compressed; every other
variable (batch-norm statistics, biases, small kernels) stays float32. Loading builds the
architecture from ``metadata.json`` and sets the dequantised weights, so inference runs
in float32 exactly as for a ``model.keras``; the only change is the rounding of each
kernel to 255 levels per channel, whose effect on validation is measured (model card).

Format: an ``.npz`` with ``paths`` (every variable's path, in order) and, per variable
``i``, either ``q{i}`` (int8) and ``s{i}`` (float32 scales) or ``f{i}`` (float32).
"""
from __future__ import annotations

import os
import re

import numpy as np

FORMAT = "brainai-int8-per-channel-v1"
MIN_QUANTISED_SIZE = 4096   # smaller kernels are not worth a scale vector


def quantise(w: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel quantisation: w ~= q * s.

    The channel axis is the last one, or the one before it for a depthwise kernel
    (kh, kw, channels, 1). ``s`` keeps its axes (size 1 elsewhere) so ``q * s`` broadcasts.

    Returns:
        (q int8 in [-(2**(bits-1) - 1), 2**(bits-1) - 1], s float32).
    """
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, received: {bits}")
    w = np.asarray(w, np.float32)
    axis = w.ndim - 1 if w.shape[-1] > 1 else w.ndim - 2
    levels = 2 ** (bits - 1) - 1
    others = tuple(a for a in range(w.ndim) if a != axis)
    scale = np.abs(w).max(axis=others, keepdims=True) / levels
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(w / scale), -levels, levels).astype(np.int8)
    return q, scale


def pack(named_weights: list[tuple[str, np.ndarray]], path: str | os.PathLike, bits: int = 8) -> dict:
    """Write ``(path, array)`` pairs to a compressed ``.npz``, kernels as ``bits``-bit integers.

    Returns:
        {"format", "quantised", "float", "max_relative_error"}: what was stored, and the
        largest per-kernel ||w - q s|| / ||w|| (a measure of the rounding).
    """
    arrays: dict[str, np.ndarray] = {"paths": np.array([p for p, _ in named_weights]),
                                     "format": np.array(FORMAT), "bits": np.array(bits)}
    n_q = n_f = 0
    worst = 0.0
    for i, (_, w) in enumerate(named_weights):
        w = np.asarray(w, np.float32)
        if w.ndim >= 2 and w.size >= MIN_QUANTISED_SIZE:
            q, s = quantise(w, bits)
            arrays[f"q{i}"], arrays[f"s{i}"] = q, s
            err = np.linalg.norm(w - q.astype(np.float32) * s) / max(np.linalg.norm(w), 1e-12)
            worst = max(worst, float(err))
            n_q += 1
        else:
            arrays[f"f{i}"] = w
            n_f += 1
    np.savez_compressed(path, **arrays)
    return {"format": FORMAT, "bits": bits, "quantised": n_q, "float": n_f, "max_relative_error": worst}


def unpack(path: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """Read a packed ``.npz`` back to float32 ``(path, array)`` pairs.

    Raises:
        ValueError: not a file in this format.
    """
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z or str(z["format"]) != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} weights file")
        out = []
        for i, p in enumerate(z["paths"]):
            if f"q{i}" in z:
                out.append((str(p), z[f"q{i}"].astype(np.float32) * z[f"s{i}"]))
            else:
                out.append((str(p), z[f"f{i}"].astype(np.float32)))
    return out


_AUTO_NAME = re.compile(r"^([a-z0-9]+(?:_[a-z]+)*?)(_\d+)?/")


def stable_path(path: str) -> str:
    """A variable path with Keras's per-process name counter removed.

    keras.applications.Xception leaves its residual convolutions unnamed, so Keras calls
    them ``conv2d``, ``conv2d_1``... counting every model built in the process; the
    position in ``model.weights`` is stable, the suffix is not.
    """
    return _AUTO_NAME.sub(r"\1/", path)


def load_into(model, path: str | os.PathLike) -> None:
    """Set every variable of ``model`` from a packed file, in order.

    Raises:
        ValueError: the file and the model do not hold the same variables (count, names
            up to Keras's name counter, shapes).
    """
    stored = unpack(path)
    variables = list(model.weights)
    if len(stored) != len(variables):
        raise ValueError(f"{path} holds {len(stored)} variables, model {model.name!r} has {len(variables)}")
    for (name, w), v in zip(stored, variables):
        if stable_path(name) != stable_path(v.path) or tuple(v.shape) != w.shape:
            raise ValueError(f"{path}: stored {name} {w.shape} does not match the model's "
                             f"{v.path} {tuple(v.shape)}")
    for (_, w), v in zip(stored, variables):
        v.assign(w)


def main(argv=None) -> int:
    """``python -m ml.weight_pack PARTS... --out weights.npz``: pack research.sweep's float16 weights,
    or one ``model.keras`` (e.g. a CPU fine-tune of ``ml.training.train``)."""
    import argparse
    import io

    p = argparse.ArgumentParser(prog="python -m ml.weight_pack", description=main.__doc__)
    p.add_argument("parts", nargs="+", help="the .npz.part* files of research.sweep --save-npz, in order, "
                                            "or one model.keras")
    p.add_argument("--bits", type=int, default=7)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if len(args.parts) == 1 and args.parts[0].endswith(".keras"):
        import keras

        model = keras.models.load_model(args.parts[0], compile=False)
        named = [(v.path, np.asarray(v.numpy(), np.float32)) for v in model.weights]
    else:
        data = b"".join(open(part, "rb").read() for part in args.parts)
        with np.load(io.BytesIO(data)) as z:
            named = [(str(path), z[f"w{i:04d}"].astype(np.float32)) for i, path in enumerate(z["paths"])]
    stats = pack(named, args.out, args.bits)
    print(f"{args.out}: {os.path.getsize(args.out) / 1e6:.1f} MB, {stats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
