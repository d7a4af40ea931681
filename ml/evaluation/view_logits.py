"""Per-image logits of a model under small geometric views of its input, cached on disk.

A *view* is a fixed transform of the prepared image (``ml.model.preprocess.prepare``'s
(S, S) output in [0, 1]): the identity, the left-right mirror, a shift, a zoom or a
rotation about the centre, all inside the training augmentation's range (shift ±6%,
zoom ±10%, rotation ±10°, ``ml/training/augment/tf_data.py``), so the model has seen such
images. Test-time augmentation is then the mean of the logits over a set of views; the
product's flip TTA is the set (identity, hflip). Logits are cached per (model weights,
images, view), so comparing TTA sets and ensembles is arithmetic on cached arrays.
"""
from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from ml.model.preprocess import PREPROCESSING_VERSION

# name -> (dx, dy as a fraction of the side, zoom factor, rotation in degrees, mirror)
VIEWS: dict[str, tuple[float, float, float, float, bool]] = {
    "identity": (0.0, 0.0, 1.0, 0.0, False),
    "hflip": (0.0, 0.0, 1.0, 0.0, True),
    "shift+4%": (0.04, 0.04, 1.0, 0.0, False),
    "shift-4%": (-0.04, -0.04, 1.0, 0.0, False),
    "zoom1.07": (0.0, 0.0, 1.07, 0.0, False),
    "zoom0.93": (0.0, 0.0, 0.93, 0.0, False),
    "rot+6": (0.0, 0.0, 1.0, 6.0, False),
    "rot-6": (0.0, 0.0, 1.0, -6.0, False),
}


def apply_view(x: np.ndarray, name: str) -> np.ndarray:
    """One view of a prepared image.

    Args:
        x: (S, S) float32 in [0, 1].
        name: a key of :data:`VIEWS`.

    Returns:
        (S, S) float32; pixels brought in from outside the image are 0 (the background
        ``prepare`` pads with).

    Raises:
        KeyError: unknown view.
    """
    if name not in VIEWS:
        raise KeyError(f"unknown view {name!r}; known: {sorted(VIEWS)}")
    dx, dy, zoom, angle, mirror = VIEWS[name]
    x = np.asarray(x, np.float32)
    if mirror:
        x = x[:, ::-1]
    if (dx, dy, zoom, angle) == (0.0, 0.0, 1.0, 0.0):
        return np.ascontiguousarray(x)
    s = x.shape[0]
    m = cv2.getRotationMatrix2D(((s - 1) / 2.0, (s - 1) / 2.0), angle, zoom)
    m[:, 2] += (dx * s, dy * s)
    return cv2.warpAffine(x, m, (s, s), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _cache_file(cache_dir: Path, info, items, view: str) -> Path:
    key = hashlib.sha256(("".join(it.sha256 for it in items)
                          + f"|{info.sha256}|{PREPROCESSING_VERSION}|{VIEWS[view]}").encode())
    # Named by the weights file's hash: the logits depend on the weights alone, not on the
    # metadata that a model's version also covers (temperature, guard).
    return cache_dir / f"{info.name}-{info.sha256[:12]}-{view}-{key.hexdigest()[:16]}.npz"


def view_logits(info, items, views, cache_dir: str | Path, progress: bool = True) -> dict:
    """Logits of a model on each image under each view (no flip averaging), from the cache
    when there.

    Args:
        info: the model's :class:`ml.model.registry.ModelInfo`.
        items: dataset items (``ml.data.dataset.Item``).
        views: names from :data:`VIEWS`.
        cache_dir: where the (N, C) arrays are kept; one ``.npz`` per view.

    Returns:
        ``{view: {"logits": (N, C) float32, "seconds_per_image": float}}``; the time is that
        of the model's forward pass alone, measured when the view was computed.
    """
    from ml.io.read import read_frames
    from ml.model import registry
    from ml.model.predict import logits_and_features_model, predict_logits_features
    from ml.model.preprocess import prepare

    cache_dir = Path(cache_dir)
    out, missing = {}, []
    for v in views:
        f = _cache_file(cache_dir, info, items, v)
        if f.exists():
            z = np.load(f)
            out[v] = {"logits": z["logits"], "seconds_per_image": float(z["seconds_per_image"])}
        else:
            missing.append(v)
    if not missing:
        return out
    size = int(info.metadata["input_size"])
    x = np.stack([prepare(read_frames(it.path)[0].pixels, size).x for it in items])
    dual = logits_and_features_model(registry.load_keras(info), info.metadata["feature_layer"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    for v in missing:
        xv = np.stack([apply_view(xi, v) for xi in x])[..., None]      # (N, S, S, 1)
        t0 = time.perf_counter()
        logits, _ = predict_logits_features(dual, xv, tta=False)
        spi = (time.perf_counter() - t0) / max(1, len(items))
        np.savez(_cache_file(cache_dir, info, items, v), logits=logits, seconds_per_image=spi)
        out[v] = {"logits": logits, "seconds_per_image": spi}
        if progress:
            print(f"{info.name} {v}: {len(items)} images, {spi:.3f} s an image", file=sys.stderr)
    return {v: out[v] for v in views}        # in the order asked, cached or not
