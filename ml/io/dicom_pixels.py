"""Turn decoded DICOM pixel arrays into grey display values in [0, 1].

Grey images go through the display chain (PS3.4 Annex N.2): Modality LUT, then the
VOI LUT or first window, then inverted for MONOCHROME1. Colour and palette images
become ITU-R 601 luma. Used by :mod:`ml.io.dicom` once a frame is decoded.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ml.errors import ImageReadError
from ml.io.dicom_tags import functional_item
from ml.io.frame import to_unit_range


def _frame_luts(ds: Any, index: int) -> Any:
    """Dataset holding the LUT attributes in force for frame ``index``.

    Enhanced (multi-frame) objects keep rescale and window per frame in functional
    groups; classic objects keep them at the top level, and then ``ds`` is returned.
    """
    if "PerFrameFunctionalGroupsSequence" not in ds and "SharedFunctionalGroupsSequence" not in ds:
        return ds
    from pydicom.dataset import Dataset

    view = Dataset()
    view.file_meta = ds.file_meta
    view.set_original_encoding(*ds.original_encoding, ds.original_character_set)
    for keyword in ("PhotometricInterpretation", "BitsStored", "BitsAllocated", "PixelRepresentation",
                    "RescaleSlope", "RescaleIntercept", "ModalityLUTSequence", "VOILUTSequence",
                    "WindowCenter", "WindowWidth", "VOILUTFunction"):
        if keyword in ds:
            setattr(view, keyword, ds[keyword].value)
    for sequence, keywords in (
        ("PixelValueTransformationSequence", ("RescaleSlope", "RescaleIntercept")),
        ("FrameVOILUTSequence", ("WindowCenter", "WindowWidth", "VOILUTFunction")),
    ):
        item = functional_item(ds, index, sequence)
        for keyword in keywords:
            if item is not None and keyword in item:
                setattr(view, keyword, item[keyword].value)
    return view


def _window(values: np.ndarray, luts: Any) -> np.ndarray | None:
    """First window centre/width -> [0, 1] (PS3.3 C.11.2.1.2); None when unusable.

    Done here rather than with pydicom's ``apply_windowing``, whose output range comes
    from the rescale and flips the image when Rescale Slope is negative.
    """
    try:
        centre = float(_first(luts.get("WindowCenter")))
        width = float(_first(luts.get("WindowWidth")))
        function = str(luts.get("VOILUTFunction") or "LINEAR").strip().upper()
    except (TypeError, ValueError, IndexError):
        return None
    if not (math.isfinite(centre) and math.isfinite(width)):
        return None
    x = values.astype(np.float64)
    if function == "SIGMOID":
        if width <= 0:
            return None
        return 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - centre) / width, -700, 700)))
    if function == "LINEAR_EXACT":
        if width <= 0:
            return None
        return np.clip((x - centre) / width + 0.5, 0.0, 1.0)
    if width < 1:  # LINEAR (the default, also for unknown functions)
        return None
    if width == 1:
        return (x > centre - 0.5).astype(np.float64)
    return np.clip((x - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _first(value: Any) -> Any:
    """First value of a possibly multi-valued element (several windows: use the first)."""
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__getitem__"):
        return value
    return value[0]


def grey_frame(arr: np.ndarray, ds: Any, index: int, photometric: str) -> tuple[np.ndarray, bool]:
    """(H, W) stored values -> (H, W) float32 [0, 1] display values; (pixels, voi_applied)."""
    from pydicom.pixels import apply_modality_lut, apply_voi

    luts = _frame_luts(ds, index)
    try:
        values = apply_modality_lut(arr, luts)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ImageReadError("DICOM modality LUT (rescale) is damaged; the image cannot be shown") from exc
    modality_unit = to_unit_range(values)
    voi_applied = False
    if photometric in ("MONOCHROME1", "MONOCHROME2") and (
        luts.get("VOILUTSequence") or ("WindowCenter" in luts and "WindowWidth" in luts)
    ):
        try:
            if luts.get("VOILUTSequence"):  # a LUT wins over a window (PS3.3 C.11.2)
                lut_input = np.rint(values).astype(np.int64) if values.dtype.kind == "f" else values
                voi = apply_voi(lut_input, luts, index=0)
            else:
                voi = _window(values, luts)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, NotImplementedError):
            voi = None  # an unusable VOI: show the full range instead (voi_applied stays False)
        if voi is not None:
            windowed = to_unit_range(voi)
            # A window that maps every pixel to one value (a bad header) hides the image.
            if windowed.max() > windowed.min() or modality_unit.max() <= modality_unit.min():
                modality_unit, voi_applied = windowed, True
    if photometric == "MONOCHROME1":  # 0 is white: flip so bright means high signal
        modality_unit = (1.0 - modality_unit).astype(np.float32)
    return modality_unit, voi_applied


def _luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (H, W) ITU-R 601 luma in the input's units (as PIL and imageio)."""
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def colour_frame(arr: np.ndarray, ds: Any, photometric: str, bits_stored: int) -> tuple[np.ndarray, float]:
    """(H, W, 3) colour or (H, W) palette indices -> ((H, W) float32 [0, 1], colourfulness)."""
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:
            rgb = apply_color_lut(arr, ds)  # (H, W, 3) uint8 or uint16
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise ImageReadError("DICOM palette colour table is damaged; the image cannot be shown") from exc
        top = float(np.iinfo(rgb.dtype).max) if np.issubdtype(rgb.dtype, np.integer) else float(rgb.max() or 1)
    else:
        rgb = arr
        top = float(2 ** bits_stored - 1)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ImageReadError(f"DICOM colour image has an unexpected shape {tuple(rgb.shape)}")
    unit = np.clip(rgb.astype(np.float64) / top, 0.0, 1.0)
    if photometric.startswith("YBR") and photometric not in ("YBR_RCT", "YBR_ICT"):
        grey = unit[..., 0]  # decoder left YCbCr: Y is already 601 luma
        chroma = 0.0
    else:
        grey = _luma(unit)
        chroma = float(np.mean(unit.max(-1) - unit.min(-1)))
    return grey.astype(np.float32), chroma
