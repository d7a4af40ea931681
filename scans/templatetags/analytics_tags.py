"""Formatting for the reviewer analytics page: rates as percentages, seconds as durations."""
from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """0.8333 -> "83.3%"; None -> "—" (nothing to measure)."""
    return "—" if value is None else f"{100 * float(value):.1f}%"


@register.filter
def decimal(value, places: int = 3) -> str:
    return "—" if value is None else f"{float(value):.{int(places)}f}"


@register.filter
def duration(seconds) -> str:
    """Seconds as "45 s", "12.5 min" or "3.2 h"; None -> "—"."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
