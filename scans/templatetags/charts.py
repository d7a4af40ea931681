"""Inline SVG charts (no scripts, no CDN): per-slice class probabilities across a study."""
from __future__ import annotations

import math

from django import template

from scans.templatetags.portal import CLASS_ORDER, LABEL_NAMES

register = template.Library()

# Colour per class; chosen to stay distinguishable in greyscale print and for red-green deficits.
CLASS_COLOURS = {"glioma": "#b42318", "meningioma": "#e08a1e", "pituitary": "#6941c6", "notumor": "#8fb8de"}
GUARD_COLOUR = "#9aa4b1"
W, H, LEFT, TOP, BOTTOM = 640, 150, 34, 8, 22


def _f(v: float) -> str:
    return f"{v:.1f}"


def _column(x: float, width: float, plot_h: float, analysis) -> list[dict]:
    """Stacked rects, bottom to top in the fixed class order; a grey block for guard rejections."""
    base = TOP + plot_h
    if analysis.label == "not_brain_mri":
        return [{"x": _f(x), "y": _f(TOP), "w": _f(width), "h": _f(plot_h), "fill": GUARD_COLOUR}]
    rects, y = [], base
    for label in CLASS_ORDER:
        h = float((analysis.probabilities or {}).get(label, 0.0)) * plot_h
        if h <= 0:
            continue
        y -= h
        rects.append({"x": _f(x), "y": _f(y), "w": _f(width), "h": _f(h), "fill": CLASS_COLOURS[label]})
    return rects


@register.inclusion_tag("scans/partials/slice_chart.html")
def slice_chart(slices, key_scan_id=None):
    analysed = [(i, s, s.analysis) for i, s in enumerate(slices, 1) if getattr(s, "analysis", None)]
    plot_w, plot_h = W - LEFT - 6, H - TOP - BOTTOM
    step = plot_w / max(len(analysed), 1)
    width = max(min(step * 0.78, 60), 1.0)
    every = max(1, math.ceil(len(analysed) / 16))  # at most ~16 axis labels
    columns = []
    for k, (number, scan, a) in enumerate(analysed):
        x = LEFT + k * step + (step - width) / 2
        probs = ", ".join(f"{LABEL_NAMES[c]} {float(a.probabilities.get(c, 0)) * 100:.0f}%"
                          for c in CLASS_ORDER if c in (a.probabilities or {}))
        columns.append({
            "rects": _column(x, width, plot_h, a), "href": f"#slice-{scan.pk}",
            "title": f"Slice {number}: {LABEL_NAMES.get(a.label, a.label)} — {probs}",
            "tick": str(number) if k % every == 0 else "", "tick_x": _f(x + width / 2),
            "is_key": scan.pk == key_scan_id, "key_x": _f(x + width / 2),
        })
    grid = [{"y": _f(TOP + plot_h * (1 - p)), "label": f"{int(p * 100)}%"} for p in (0, 0.5, 1)]
    legend = [(LABEL_NAMES[c], CLASS_COLOURS[c]) for c in CLASS_ORDER]
    return {"columns": columns, "grid": grid, "legend": legend, "w": W, "h": H, "left": LEFT,
            "right": W - 6, "base": _f(TOP + plot_h), "tick_y": _f(H - 6), "guard_colour": GUARD_COLOUR}
