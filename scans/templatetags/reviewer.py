"""Template helpers for what a reviewer sees beside a slice's label: the heatmap's
faithfulness check, the input guard's verdict, and the box the heatmap viewer draws in
(scans.slice_facts holds the logic; the API reads the same functions)."""
from __future__ import annotations

from django import template

from scans import slice_facts

register = template.Library()


@register.filter
def faithfulness_check(analysis):
    """The stored check (slice_facts.FaithfulnessCheck), or None: not computed."""
    return slice_facts.faithfulness_check(analysis)


@register.filter
def guard_verdict(analysis):
    """The input guard's verdict (slice_facts.GuardVerdict), or None before an analysis."""
    return slice_facts.guard_verdict(analysis)


@register.filter
def heat_box(scan) -> str:
    """Inline style for the viewer's stack: the preview's aspect ratio, fitted into a square.

    The heatmap PNG is the map (same aspect as the preview) plus a colour bar on its right;
    the stack has the preview's aspect, so ``object-fit: cover`` anchored left shows the map
    and crops the bar. Without stored dimensions the script (static/js/report-maps.js)
    takes them from the preview once it has loaded.
    """
    rows, cols = int(getattr(scan, "rows", 0) or 0), int(getattr(scan, "columns", 0) or 0)
    if rows <= 0 or cols <= 0:
        return "aspect-ratio: 1 / 1; width: 100%"
    width = 100.0 if cols >= rows else 100.0 * cols / rows
    return f"aspect-ratio: {cols} / {rows}; width: {width:.3f}%"
