"""Slice selection inside an analysed series: a slice with too little head is not classified.

Two checks, cheapest first:
- signal: the slice's robust top (``Frame.meta["signal_level"]``, stored values) against the
  series' brightest slice. Display scaling is per frame, so an empty edge slice of a volume
  (noise only) looks as bright as any other once read; its stored values do not.
- head: the share of the frame the product's one head mask (ml.model.preprocess.head_mask)
  covers. A slice that catches only the top of the skull or a wrap-around sliver is small.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.model.preprocess import head_mask
from ml.study.rules import Rules

_WORK_SIDE = 128  # the mask is computed at most at this size: cheap on a 512x512 slice


@dataclass(frozen=True)
class SliceDecision:
    """``analysed`` False names the reason; ``head_fraction`` is the share of the frame that is head."""

    analysed: bool
    head_fraction: float | None
    reason: str = ""


def head_fraction(pixels: np.ndarray) -> float:
    """Share of an (H, W) [0, 1] image the head mask covers (1.0 for a blank image)."""
    img = np.asarray(pixels, np.float32)
    step = max(1, int(np.ceil(max(img.shape) / _WORK_SIDE)))
    return float(head_mask(np.ascontiguousarray(img[::step, ::step])).mean())


def decide_slice(pixels: np.ndarray, rules: Rules, *, signal_level: float | None = None,
                 series_level: float | None = None) -> SliceDecision:
    """Whether one slice holds enough head to classify, by the rules' ``slice`` bounds.

    Args:
        pixels: (H, W) float32 [0, 1], as the readers return it.
        rules: the series rules (``slice.min_signal_ratio``, ``slice.min_head_fraction``).
        signal_level: this slice's ``Frame.meta["signal_level"]`` (DICOM only).
        series_level: the series' highest signal level (``SeriesFacts.signal_level``).
    """
    bounds = rules.get("slice") or {}
    ratio = float(bounds.get("min_signal_ratio", 0.0))
    if signal_level is not None and series_level and signal_level < ratio * series_level:
        return SliceDecision(False, None, f"no anatomy: an empty slice ({signal_level / series_level:.0%} of the "
                                          f"series' brightest signal, below {ratio:.0%})")
    least = float(bounds.get("min_head_fraction", 0.0))
    fraction = head_fraction(pixels)
    if fraction < least:
        return SliceDecision(False, fraction, f"too little head: {fraction:.0%} of the slice (below {least:.0%})")
    return SliceDecision(True, fraction)
