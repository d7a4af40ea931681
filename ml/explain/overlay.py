"""PNG renderings of a heatmap: alone, or blended over the original image, with a colour bar.

Pure numpy + OpenCV, no TensorFlow and no matplotlib: the web process can import it
cheaply. Output is deterministic (same arrays in, same bytes out): colormaps are
computed analytically, text is drawn with OpenCV's built-in Hershey font, and the PNG
encoder writes no timestamp.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

COLORMAPS = ("jet", "hot")
MIN_SIDE = 256    # small images are enlarged so the colour bar's labels stay readable
MAX_SIDE = 1024   # large ones are shrunk: the PNG is for display, not for measurement
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


@lru_cache(maxsize=None)
def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB lookup table for "jet" or "hot" (matplotlib's definitions).

    Raises:
        ValueError: unknown colormap name.
    """
    v = np.linspace(0.0, 1.0, 256)
    if name == "hot":
        rgb = np.stack([np.clip(v / 0.365079, 0, 1),
                        np.clip((v - 0.365079) / (0.746032 - 0.365079), 0, 1),
                        np.clip((v - 0.746032) / (1 - 0.746032), 0, 1)], -1)
    elif name == "jet":
        rgb = np.stack([np.clip(1.5 - np.abs(4 * v - 3), 0, 1),
                        np.clip(1.5 - np.abs(4 * v - 2), 0, 1),
                        np.clip(1.5 - np.abs(4 * v - 1), 0, 1)], -1)
    else:
        raise ValueError(f"unknown colormap {name!r}; expected one of {COLORMAPS}")
    lut = np.round(rgb * 255).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def _as_unit(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) array, received shape {a.shape}")
    return np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def colourise(heat: np.ndarray, cmap: str = "jet") -> np.ndarray:
    """(H, W) map in [0, 1] -> (H, W, 3) uint8 RGB."""
    idx = np.round(_as_unit(heat, "heat") * 255).astype(np.uint8)
    return colormap_lut(cmap)[idx]


def blend(image: np.ndarray, heat: np.ndarray, *, cmap: str = "jet", alpha: float = 0.4,
          transparent_below: float | None = None, alpha_by_value: bool = False) -> np.ndarray:
    """Alpha-blend a colourised map over a grey image: (H, W) x 2 -> (H, W, 3) uint8.

    Args:
        image: (H, W) grey in [0, 1].
        heat: (H, W) map in [0, 1], same shape.
        alpha: weight of the colour (0 shows only the image).
        transparent_below: where heat is below this, show the image untouched (used for
            the thresholded saliency map, whose zeros mean "nothing here").
        alpha_by_value: scale the colour weight by the map's value, so weak evidence
            fades into the image instead of drawing the colormap's dark end over it.

    Raises:
        ValueError: shapes differ, or alpha is outside [0, 1].
    """
    img, h = _as_unit(image, "image"), _as_unit(heat, "heat")
    if img.shape != h.shape:
        raise ValueError(f"image {img.shape} and heat {h.shape} must have the same shape")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], received: {alpha}")
    grey = cv2.cvtColor(np.round(img * 255.0).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    colour = colourise(h, cmap)
    if not alpha_by_value and transparent_below is None:
        # One weight for every pixel: OpenCV's saturating uint8 blend, 5x faster than numpy.
        return cv2.addWeighted(grey, 1.0 - alpha, colour, alpha, 0.0)
    a = np.full(h.shape, alpha, np.float32)
    if alpha_by_value:
        a = a * h
    if transparent_below is not None:
        a = np.where(h < transparent_below, 0.0, a)
    a = a[..., None]
    out = (1.0 - a) * grey.astype(np.float32) + a * colour.astype(np.float32)
    return np.round(out).astype(np.uint8)


def _display_scale(shape: tuple[int, int]) -> float:
    side = max(shape)
    if side < MIN_SIDE:
        return MIN_SIDE / side
    if side > MAX_SIDE:
        return MAX_SIDE / side
    return 1.0


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def colour_bar(height: int, cmap: str = "jet") -> np.ndarray:
    """(height, w, 3) uint8 panel: a vertical gradient (1 at the top) with 0 / 0.5 / 1 ticks."""
    font_scale = max(0.35, height / 700.0)
    thick = 1 if height < 600 else 2
    pad = max(4, height // 40)
    bar_w = max(10, height // 24)
    text_w = cv2.getTextSize("0.5", cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)[0][0]
    width = pad + bar_w + pad + text_w + pad
    panel = np.zeros((height, width, 3), np.uint8)
    top, bottom = pad * 2, height - pad * 2
    values = np.linspace(1.0, 0.0, max(bottom - top, 2))
    strip = colormap_lut(cmap)[np.round(values * 255).astype(np.uint8)]         # (rows, 3)
    panel[top:top + len(strip), pad:pad + bar_w] = strip[:, None, :]
    for v in (1.0, 0.5, 0.0):
        y = int(round(top + (1.0 - v) * (len(strip) - 1)))
        cv2.line(panel, (pad + bar_w, y), (pad + bar_w + pad // 2, y), (255, 255, 255), 1)
        text = f"{v:g}" if v not in (0.0, 1.0) else str(int(v))
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        ty = min(max(y + th // 2, th + 1), height - 2)
        cv2.putText(panel, text, (pad + bar_w + pad, ty), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (255, 255, 255), thick, cv2.LINE_AA)
    return panel


def encode_png(rgb: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG bytes (deterministic)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR),
                           _PNG_PARAMS)
    if not ok:  # pragma: no cover - OpenCV fails only on invalid arrays, checked above
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _compose(rgb: np.ndarray, cmap: str, colorbar: bool) -> bytes:
    rgb = _resize(rgb, _display_scale(rgb.shape[:2]))
    if colorbar:
        rgb = np.concatenate([rgb, colour_bar(rgb.shape[0], cmap)], axis=1)
    return encode_png(rgb)


def render_overlay_png(image: np.ndarray, heat: np.ndarray, *, cmap: str = "jet",
                       alpha: float = 0.4, colorbar: bool = True,
                       transparent_below: float | None = None, alpha_by_value: bool = False) -> bytes:
    """The map blended over the original image, with a colour bar on the right, as PNG.

    Args:
        image: (H, W) grey original in [0, 1].
        heat: (H, W) map on the original in [0, 1] (e.g. ``SliceResult.gradcam``).
        cmap: "jet" (Grad-CAM) or "hot" (the seed's saliency picture).
        alpha: colour weight of the blend.
        colorbar: append the 0-1 colour bar.
        transparent_below: leave the image untouched where heat is below this.
        alpha_by_value: weigh the colour by the map's value (for the saliency map:
            ``cmap="hot", alpha=0.7, alpha_by_value=True``).

    Returns:
        PNG bytes, the longer side scaled into [256, 1024] pixels (plus the bar).

    Raises:
        ValueError: shapes differ, wrong dimensions, unknown colormap, alpha out of range.
    """
    rgb = blend(image, heat, cmap=cmap, alpha=alpha, transparent_below=transparent_below,
                alpha_by_value=alpha_by_value)
    return _compose(rgb, cmap, colorbar)


def render_heatmap_png(heat: np.ndarray, *, cmap: str = "jet", colorbar: bool = True) -> bytes:
    """The map alone, colourised, with a colour bar, as PNG (see :func:`render_overlay_png`)."""
    return _compose(colourise(heat, cmap), cmap, colorbar)
