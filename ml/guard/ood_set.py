"""An offline out-of-distribution set for the input guard: things that are not brain MRI.

Built from what is on any machine with our dependencies: other modalities and test
patterns among pydicom's bundled test files, the sample images matplotlib ships, and
synthetic blank, noise, text and pattern images. Nothing is downloaded.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# pydicom test files that are not brain MRI (CT, radiotherapy dose, ultrasound, colour
# test patterns, other secondary captures).
PYDICOM_FOREIGN = (
    "CT_small.dcm", "liver_1frame.dcm", "rtdose_1frame.dcm", "examples_ybr_color.dcm",
    "examples_palette.dcm", "examples_rgb_color.dcm", "SC_rgb_small_odd.dcm", "SC_rgb.dcm",
    "SC_rgb_jpeg_dcmtk.dcm", "JPEG2000.dcm", "US1_UNCR.dcm", "OBXXXX1A.dcm", "RG1_UNCR.dcm",
    "RG3_UNCR.dcm", "CT1_UNCR.dcm",
)
MATPLOTLIB_FOREIGN = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")


@dataclass
class OODItem:
    name: str
    kind: str  # "modality", "photo", "synthetic"
    image: np.ndarray  # (H, W) float32 [0, 1]
    meta: dict


def _pydicom_items() -> list[OODItem]:
    from pydicom.data import get_testdata_file

    from ml.errors import ImageReadError
    from ml.io.read import read_frames

    items = []
    for name in PYDICOM_FOREIGN:
        try:
            path = get_testdata_file(name)
        except Exception:  # noqa: BLE001 - pydicom raises several kinds for unknown names
            path = None
        if not path:
            continue
        try:
            frames = read_frames(path)
        except ImageReadError:
            continue
        f = frames[0]
        if min(f.pixels.shape) >= 16:
            items.append(OODItem(f"pydicom:{name}", "modality", f.pixels, f.meta))
    return items


def _matplotlib_items() -> list[OODItem]:
    import matplotlib

    from ml.io.read import read_frames

    root = Path(matplotlib.get_data_path()) / "sample_data"
    items = []
    for name in MATPLOTLIB_FOREIGN:
        if (root / name).is_file():
            f = read_frames(root / name)[0]
            items.append(OODItem(f"matplotlib:{name}", "photo", f.pixels, f.meta))
    dem = root / "jacksboro_fault_dem.npz"
    if dem.is_file():
        from ml.io.frame import to_unit_range

        z = np.load(dem)["elevation"]
        items.append(OODItem("matplotlib:terrain-elevation", "photo", to_unit_range(z), {}))
    return items


def _text_image(rng: np.random.Generator, size=(512, 400)) -> np.ndarray:
    img = np.full(size, 245, np.uint8)
    y = 30
    words = ["Patient", "report", "findings", "impression", "lorem", "ipsum", "dolor",
             "invoice", "total", "date", "signature", "clinic", "the", "and", "of"]
    while y < size[0] - 20:
        line = " ".join(rng.choice(words, rng.integers(3, 7)))
        cv2.putText(img, line, (15, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 20, 1, cv2.LINE_AA)
        y += int(rng.integers(22, 34))
    return img.astype(np.float32) / 255.0


def synthetic_items(seed: int = 0) -> list[OODItem]:
    """Blank, noise, text, gradient and pattern images (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    s = 224
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / (s - 1)
    checker = (((np.arange(s)[:, None] // 16) + (np.arange(s)[None, :] // 16)) % 2).astype(np.float32)
    out = [
        ("blank-black", np.zeros((s, s), np.float32)),
        ("blank-white", np.ones((s, s), np.float32)),
        ("blank-grey", np.full((s, s), 0.5, np.float32)),
        ("uniform-noise", rng.random((s, s), dtype=np.float32)),
        ("gaussian-noise", np.clip(rng.normal(0.5, 0.2, (s, s)), 0, 1).astype(np.float32)),
        ("salt-and-pepper", (rng.random((s, s)) > 0.5).astype(np.float32)),
        ("smooth-noise", cv2.GaussianBlur(rng.random((s, s), dtype=np.float32), (0, 0), 6)),
        ("gradient-horizontal", xx),
        ("gradient-radial", np.clip(1 - np.hypot(xx - 0.5, yy - 0.5) * 1.4, 0, 1)),
        ("checkerboard", checker),
        ("stripes", (np.sin(xx * 60) > 0).astype(np.float32)),
        ("text-document-1", _text_image(rng)),
        ("text-document-2", _text_image(rng, (300, 600))),
        ("text-document-3", 1.0 - _text_image(rng)),
    ]
    colour = rng.random((s, s, 3), dtype=np.float32)
    from ml.io.raster import colourfulness

    items = [OODItem(f"synthetic:{n}", "synthetic", img, {}) for n, img in out]
    items.append(OODItem("synthetic:colour-noise", "synthetic", colour.mean(-1),
                         {"colourfulness": colourfulness(colour)}))
    return items


def build_ood_set(seed: int = 0) -> list[OODItem]:
    """Every offline foreign image we can assemble, in a fixed order."""
    return _pydicom_items() + _matplotlib_items() + synthetic_items(seed)


def matplotlib_brain_mri() -> np.ndarray | None:
    """matplotlib's bundled 256x256 MRI slice (s1045.ima), an extra in-distribution probe."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "s1045.ima.gz"
    if not path.is_file():
        return None
    raw = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint16).reshape(256, 256)
    from ml.io.frame import to_unit_range

    return to_unit_range(raw.astype(np.float32))
