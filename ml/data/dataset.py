"""Dataset scanning, the leak-free validation split and the decoded-array cache."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ml.labels import CLASSES
from ml.model.preprocess import PREPROCESSING_VERSION

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".dcm", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Item:
    path: str
    label: int
    sha256: str


def default_data_dir() -> Path:
    """``BRAINAI_DATA_DIR``, else ``../shared/datasets/brain-tumor-mri/Training`` near the repo."""
    env = os.environ.get("BRAINAI_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared/datasets/brain-tumor-mri/Training"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def scan(data_dir: str | os.PathLike, classes=CLASSES) -> list[Item]:
    """List the images of a one-folder-per-class directory, sorted, with their hashes.

    Raises:
        FileNotFoundError: data_dir or one of the class folders is missing.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data directory not found: {root}")
    items: list[Item] = []
    for label, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{root} must hold one folder per class {list(classes)}; '{name}/' is missing"
            )
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                items.append(Item(str(path), label, _sha256(path)))
    if not items:
        raise FileNotFoundError(f"no images found under {root}")
    return items


def subsample(items: Sequence, limit: int | None, seed: int) -> list:
    """A seeded sample of ``limit`` items, kept in their original order.

    The same items, limit and seed always give the same sample, so ``ml.train --limit``,
    ``ml.evaluate --limit``, the faithfulness study and the research tools that retrace a
    run all pick the same images.

    Args:
        items: any sequence (dataset items, indices).
        limit: how many to keep; None, 0 or at least ``len(items)`` keeps them all.
        seed: seeds ``numpy.random.default_rng``.

    Returns:
        A new list.
    """
    if not limit or limit >= len(items):
        return list(items)
    rng = np.random.default_rng(seed)
    return [items[i] for i in np.sort(rng.choice(len(items), limit, replace=False))]


def manifest_sha256(items: list[Item], root: str | os.PathLike) -> str:
    """Hash of (relative path, label, file hash) for every item: identifies a dataset."""
    h = hashlib.sha256()
    for it in sorted(items, key=lambda i: i.path):
        rel = os.path.relpath(it.path, root)
        h.update(f"{rel}\t{CLASSES[it.label]}\t{it.sha256}\n".encode())
    return h.hexdigest()


def grouped_split(items: list[Item], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split grouped by file hash: identical files never straddle the split.

    Returns:
        (train_idx, val_idx) as sorted int arrays into ``items``.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), received: {val_fraction}")
    rng = np.random.default_rng(seed)
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(it.sha256, []).append(i)
    val: list[int] = []
    for label in sorted({it.label for it in items}):
        keys = sorted(k for k, idx in groups.items() if items[idx[0]].label == label)
        rng.shuffle(keys)
        n_items = sum(len(groups[k]) for k in keys)
        taken = 0
        for k in keys:
            if taken >= round(val_fraction * n_items):
                break
            val.extend(groups[k])
            taken += len(groups[k])
    val_idx = np.array(sorted(val), dtype=int)
    train_idx = np.setdiff1d(np.arange(len(items)), val_idx)
    return train_idx, val_idx


def _prepare_one(args: tuple[str, int]) -> np.ndarray:
    from ml.io.read import read_image
    from ml.model.preprocess import prepare

    path, size = args
    x = prepare(read_image(path), size).x
    return np.round(x * 255.0).astype(np.uint8)


def load_arrays(items: list[Item], size: int, cache_dir: str | os.PathLike | None = None,
                progress: bool = True, workers: int | None = None) -> np.ndarray:
    """Decode and preprocess every item once: (N, size, size) uint8, cached on disk.

    The cache key covers the file hashes, the input size and the preprocessing version,
    so a change to any of them rebuilds it.
    """
    key = hashlib.sha256(
        ("".join(it.sha256 for it in items) + f"|{size}|{PREPROCESSING_VERSION}").encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"arrays-{size}-{key}.npy" if cache_dir else None
    if cache and cache.exists():
        return np.load(cache)
    jobs = [(it.path, size) for it in items]
    workers = workers or min(4, os.cpu_count() or 1)
    with ProcessPoolExecutor(workers) as pool:
        results = pool.map(_prepare_one, jobs, chunksize=32)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc=f"decode+preprocess @{size}px", unit="img")
        arr = np.stack(list(results))
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        tmp.replace(cache)
    return arr
