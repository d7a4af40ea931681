"""Template helpers for the portal: roles, AI labels, probabilities as bars."""
from __future__ import annotations

from django import template
from django.conf import settings

from scans import roles

register = template.Library()

# How each model label reads to a person; the order is the one the probability charts use.
LABEL_NAMES = {
    "glioma": "Glioma",
    "meningioma": "Meningioma",
    "pituitary": "Pituitary tumour",
    "notumor": "No tumour",
    "not_brain_mri": "Not a brain MRI",
    "indeterminate": "Indeterminate: review",
}
POSITIVE_LABELS = frozenset({"glioma", "meningioma", "pituitary"})
CLASS_ORDER = ("glioma", "meningioma", "pituitary", "notumor")


def role_of(user) -> str:
    """'radiologist', 'admin', 'staff' or '' (no clinic role), for the header badge."""
    if roles.is_radiologist(user):
        return "radiologist"
    if roles.is_admin(user):
        return "admin"
    if roles.is_clinic_user(user):
        return "staff"
    return "operator" if roles.is_operator(user) else ""


@register.filter
def role_name(user) -> str:
    return role_of(user) or "no role"


@register.filter
def is_operator(user) -> bool:
    """Operators and admins: the operator's queue view is theirs (scans.permissions.OPERATE)."""
    return roles.is_operator(user)


@register.filter
def is_clinic_user(user) -> bool:
    return roles.is_clinic_user(user)


@register.filter
def can_view_analytics(user) -> bool:
    """Radiologists and admins: the reviewer analytics (scans.permissions.ANALYTICS)."""
    from scans.permissions import ANALYTICS

    return ANALYTICS(user)


@register.filter
def duration(seconds) -> str:
    """Seconds as a short waiting time: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    if seconds is None:
        return "—"
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


@register.filter
def label_name(label) -> str:
    if not label:
        return "—"
    return LABEL_NAMES.get(label, str(label).replace("_", " ").capitalize())


@register.filter
def label_class(label) -> str:
    """CSS class: positive findings in red, no tumour in green, guard rejections grey."""
    if label in POSITIVE_LABELS:
        return "label-positive"
    if label == "notumor":
        return "label-negative"
    if label:
        return "label-guard"
    return "label-none"


@register.filter
def percent(value, digits=1) -> str:
    """0.9312 -> '93.1%'; None -> '—'."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def bar_width(value) -> str:
    """A probability as a CSS width, clamped to 0..100%, with a dot decimal whatever the locale."""
    try:
        v = min(max(float(value or 0), 0.0), 1.0)
    except (TypeError, ValueError):
        v = 0.0
    return f"{v * 100:.1f}%"


@register.filter
def is_low_confidence(value) -> bool:
    return value is not None and float(value) < settings.BRAINAI_LOW_CONFIDENCE


@register.filter
def sorted_probs(probabilities) -> list[tuple[str, float, bool]]:
    """{'glioma': .9, ...} -> [(label, p, is_top), ...] in the fixed class order."""
    if not probabilities:
        return []
    probs = {k: float(v) for k, v in dict(probabilities).items()}
    top = max(probs, key=probs.get)
    keys = [k for k in CLASS_ORDER if k in probs] + sorted(k for k in probs if k not in CLASS_ORDER)
    return [(k, probs[k], k == top) for k in keys]


@register.inclusion_tag("scans/partials/probs.html")
def prob_bars(probabilities, caption=""):
    return {"rows": sorted_probs(probabilities), "caption": caption}


@register.filter
def region_text(region) -> str:
    """The Grad-CAM region descriptor (ml.explain.region) as one line, e.g.
    "peak at patient's left, anterior · deep · 1 hot spot"."""
    if not region or not region.get("peak"):
        return ""
    parts = [f"peak at {region['peak'].get('text') or 'an unnamed place'}"]
    if region.get("depth"):
        parts.append(region["depth"])
    if region.get("midline"):
        parts.append("near the midline")
    if region.get("sellar"):
        parts.append("sellar region")
    spots = region.get("hot_spots")
    if spots:
        parts.append(f"{spots} hot spot{'s' if spots != 1 else ''}")
    return " · ".join(parts)
