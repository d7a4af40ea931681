"""``python -m research.gan sample``: write generated slices in the one-folder-per-class layout.

The layout is the one ``python -m ml.train --synthetic DIR`` reads:
``DIR/glioma/gan_s<seed>_00000.png`` ... plus ``DIR/gan_samples.json`` (provenance:
generator file hash, seed, counts, and the real-data split the GAN was trained on,
which :mod:`research.gan.ablation` checks before it trusts the folder).
Sampling is deterministic: class c, seed s always gets the latents
``default_rng([s, c]).standard_normal``, and the generator runs in inference mode.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from ml.labels import CLASSES

DEFAULT_GENERATOR = "research/gan/weights/generator.keras"   # the shipped one; `research.gan train` writes var/gan


def load_generator(path: str | Path):
    """Load a generator saved by ``research.gan train`` and its gan.json (if beside it).

    Returns:
        (keras.Model, metadata dict; {} when there is no gan.json).

    Raises:
        FileNotFoundError: no such file.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator not found: {path} (train one with `python -m research.gan train`)")
    model = keras.models.load_model(path, compile=False)
    meta_file = path.parent / "gan.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return model, meta


def latents(seed: int, class_index: int, n: int, latent_dim: int) -> np.ndarray:
    """(n, latent_dim) float32 standard normal, fixed by (seed, class_index)."""
    return np.random.default_rng([seed, class_index]).standard_normal((n, latent_dim)).astype(np.float32)


def generate(generator, labels: np.ndarray, z: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Run the generator in inference mode.

    Args:
        labels: (N,) int class indices.
        z: (N, latent_dim) float32.

    Returns:
        (N, S, S) uint8 images (generator's [-1, 1] mapped to [0, 255]).
    """
    out = []
    labels = np.asarray(labels, np.int32).reshape(-1, 1)
    for i in range(0, len(z), batch_size):
        x = np.asarray(generator([z[i:i + batch_size], labels[i:i + batch_size]], training=False))
        out.append(np.clip(np.round((x[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8))
    size = generator.output.shape[1]
    return np.concatenate(out) if out else np.zeros((0, size, size), np.uint8)


def sample_class(generator, class_index: int, n: int, seed: int, batch_size: int = 64) -> np.ndarray:
    """n images of one class as (n, S, S) uint8."""
    latent_dim = generator.inputs[0].shape[-1]
    return generate(generator, np.full(n, class_index), latents(seed, class_index, n, latent_dim), batch_size)


def grid_image(generator, z: np.ndarray, classes=CLASSES, label_width: int = 96) -> np.ndarray:
    """One row per class, the same latents across rows: (rows*S, label_width + cols*S) uint8."""
    import cv2

    size = generator.output.shape[1]
    rows = []
    for k, name in enumerate(classes):
        imgs = generate(generator, np.full(len(z), k), z)
        row = np.concatenate(list(imgs), axis=1)
        label = np.zeros((size, label_width), np.uint8)
        cv2.putText(label, name, (4, size // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * max(size, 64) / 128, 255, 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, row], axis=1))
    return np.concatenate(rows, axis=0)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_folder(generator_path: str | Path, out: str | Path, per_class: int, seed: int = 0,
                 batch_size: int = 64, overwrite: bool = False, progress: bool = True) -> dict:
    """Write per_class PNGs for every class under out/<class>/ and out/gan_samples.json.

    Returns:
        The provenance dict written to gan_samples.json.

    Raises:
        FileExistsError: a class folder already holds images and overwrite is False.
        ValueError: per_class < 1.
    """
    from PIL import Image
    from tqdm import tqdm

    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, received: {per_class}")
    generator, meta = load_generator(generator_path)
    classes = meta.get("classes", list(CLASSES))
    out = Path(out)
    for name in classes:
        folder = out / name
        existing = sorted(folder.glob("*.png")) if folder.is_dir() else []
        if existing and not overwrite:
            raise FileExistsError(f"{folder} already holds {len(existing)} images; "
                                  "pass --overwrite to replace them")
        for f in existing:
            f.unlink()
        folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=per_class * len(classes), desc="sample", unit="img", disable=not progress)
    for k, name in enumerate(classes):
        imgs = sample_class(generator, k, per_class, seed, batch_size)
        for i, img in enumerate(imgs):
            Image.fromarray(img).save(out / name / f"gan_s{seed}_{i:05d}.png")
        bar.update(len(imgs))
    bar.close()
    provenance = {
        "generator": str(generator_path), "generator_sha256": file_sha256(generator_path),
        "seed": seed, "per_class": per_class, "classes": list(classes),
        "size": int(generator.output.shape[1]),
        "trained_on": meta.get("data", {}),
    }
    (out / "gan_samples.json").write_text(json.dumps(provenance, indent=1))
    return provenance


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", default=DEFAULT_GENERATOR, help="generator.keras from `research.gan train`")
    p.add_argument("--per-class", type=int, required=True, help="images per class")
    p.add_argument("--out", required=True, help="output folder (one sub-folder per class)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--overwrite", action="store_true", help="replace images already in --out")


def main(args: argparse.Namespace) -> int:
    prov = write_folder(args.generator, args.out, args.per_class, args.seed, args.batch_size, args.overwrite)
    print(f"wrote {prov['per_class']} x {len(prov['classes'])} images ({prov['size']} px) to {args.out}")
    return 0
