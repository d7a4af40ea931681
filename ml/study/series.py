"""Series facts from the readers' Frame.meta, and the per-series decision: analysed or not, and why.

A rule fires only on a fact the header holds: a tag that is absent decides nothing, so a
series is never refused for what its scanner did not write.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ml.study.rules import Rules

# Status codes (stable, for the API and JSON); the reason is the words a person reads.
ANALYSED = "analysed"
EXCLUDED_CODES = ("modality", "image_type", "description", "mosaic", "matrix", "pixel_spacing",
                  "slice_thickness", "slices", "plane", "three_d")


def plane_of(orientation: Sequence[float] | None) -> str | None:
    """'axial', 'coronal', 'sagittal' or 'oblique' from ImageOrientationPatient; None when absent.

    The slice normal is row x column; its largest LPS component names the plane. A normal
    more than 30 degrees off every axis is oblique.
    """
    if orientation is None or len(orientation) != 6:
        return None
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    norm = float(np.linalg.norm(normal))
    if norm < 1e-6:
        return None
    normal = np.abs(normal / norm)
    axis = int(np.argmax(normal))
    if normal[axis] < np.cos(np.radians(30)):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


@dataclass
class SeriesFacts:
    """What series selection reads, from the first frame's header plus the slice count."""

    modality: str | None = None
    description: str | None = None
    number: int | None = None
    image_type: list[str] | None = None
    acquisition: str | None = None  # MRAcquisitionType: "2D" / "3D"
    rows: int | None = None
    columns: int | None = None
    pixel_spacing: list[float] | None = None
    slice_thickness: float | None = None
    plane: str | None = None
    slices: int = 0
    mosaic: bool = False
    has_tags: bool = True  # False for JPEG/PNG: no series rules can apply
    signal_level: float | None = None  # brightest slice's robust top (stored values), for slice selection
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_metas(cls, metas: Sequence[dict[str, Any]]) -> "SeriesFacts":
        """Facts of one series from the ``Frame.meta`` of its frames (any order)."""
        if not metas:
            return cls(has_tags=False)
        first = metas[0]
        if first.get("format") != "DICOM":
            return cls(slices=len(metas), has_tags=False)
        size = first.get("size") or [None, None]  # [width, height]
        image_type = first.get("image_type")
        return cls(
            modality=first.get("modality"), description=first.get("series_description"),
            number=first.get("series_number"), image_type=list(image_type) if image_type else None,
            acquisition=(first.get("mr_acquisition_type") or "").upper() or None,
            rows=size[1], columns=size[0], pixel_spacing=first.get("pixel_spacing"),
            slice_thickness=first.get("slice_thickness"), plane=plane_of(first.get("image_orientation_patient")),
            slices=len(metas),
            mosaic=bool(first.get("images_in_mosaic")) or "MOSAIC" in (image_type or []),
            signal_level=max((m["signal_level"] for m in metas if m.get("signal_level") is not None), default=None),
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (what the Series row and the evaluation JSON store)."""
        out = asdict(self)
        out.pop("extra")
        return out

    def name(self) -> str:
        """'series 4 (T1 post-contrast, axial)' — for evidence sentences."""
        label = f"series {self.number}" if self.number is not None else "the series"
        details = ", ".join(x for x in (self.description, self.plane) if x)
        return f"{label} ({details})" if details else label


@dataclass(frozen=True)
class SeriesDecision:
    """Whether a series is analysed: ``code`` is ANALYSED or one of EXCLUDED_CODES."""

    analysed: bool
    code: str
    reason: str
    step: int = 1  # analyse every step-th slice (a thin 3D volume sampled at the training spacing)

    def as_dict(self) -> dict[str, Any]:
        return {"analysed": self.analysed, "code": self.code, "reason": self.reason, "step": self.step}


def _excluded(code: str, reason: str) -> SeriesDecision:
    return SeriesDecision(False, code, reason)


def decide_series(facts: SeriesFacts, rules: Rules) -> SeriesDecision:
    """Apply the rules in a fixed order; the first that fires gives the reason.

    Returns ANALYSED with "no series rules could apply" for images without tags.
    """
    if not facts.has_tags:
        return SeriesDecision(True, ANALYSED, "no series rules could apply (an image without DICOM tags)")
    modalities = [m.upper() for m in rules.get("modalities") or []]
    if facts.modality and modalities and facts.modality.upper() not in modalities:
        return _excluded("modality", f"modality {facts.modality}: the model reads MR only")
    if facts.mosaic:
        # A MOSAIC tiles every slice of one volume into a single image: fMRI or diffusion.
        what = "diffusion (DWI)" if "DIFFUSION" in (facts.image_type or []) else "fMRI"
        return _excluded("mosaic", f"Siemens MOSAIC: tiled {what}, not one slice")
    for token, reason in rules.image_type_exclude:
        if token in (facts.image_type or []):
            return _excluded("image_type", reason)
    # "SWI_Images", "tof_fl3d_tra": scanners join words with _ and -, which \b does not split.
    description = re.sub(r"[_\-]+", " ", facts.description or "")
    if not any(p.search(description) for p in rules.description_include):
        for pattern, reason in rules.description_exclude:
            if pattern.search(description):
                return _excluded("description", reason)
    return _geometry(facts, rules)


def _geometry(facts: SeriesFacts, rules: Rules) -> SeriesDecision:
    """Matrix, spacing, thickness, slice count, plane and the 3D decision."""
    least = rules.get("min_matrix")
    sides = [s for s in (facts.rows, facts.columns) if s]
    if least and sides and min(sides) < least:
        return _excluded("matrix", f"{facts.rows}×{facts.columns} matrix: below the {least}-pixel minimum")
    widest = rules.get("max_pixel_spacing_mm")
    if widest and facts.pixel_spacing and max(facts.pixel_spacing) > widest:
        return _excluded("pixel_spacing", f"{max(facts.pixel_spacing):.1f} mm pixels: coarser than the "
                                          f"{widest:g} mm maximum")
    thickest = rules.get("max_slice_thickness_mm")
    if thickest and facts.slice_thickness and facts.slice_thickness > thickest:
        return _excluded("slice_thickness", f"{facts.slice_thickness:g} mm slices: thicker than the "
                                            f"{thickest:g} mm maximum")
    fewest = int(rules.get("min_slices") or 1)
    if facts.slices < fewest:
        return _excluded("slices", f"{facts.slices} slice(s): fewer than the {fewest} a series needs")
    planes = rules.get("planes") or []
    if facts.plane and planes and facts.plane not in planes:
        return _excluded("plane", f"{facts.plane} plane: the model was trained on {', '.join(planes)} slices")
    three_d = rules.get("three_d_isotropic") or {}
    thin = facts.slice_thickness is not None and facts.slice_thickness <= float(three_d.get("max_thickness_mm", 0))
    if facts.acquisition == "3D" and thin and three_d.get("action") == "exclude":
        return _excluded("three_d", f"3D isotropic volume ({facts.slice_thickness:g} mm): excluded by the "
                                    "rules (the model reads 2D slices of about 5 mm)")
    plane = facts.plane or "unknown plane"
    if facts.acquisition == "3D" and thin and three_d.get("action") == "sample":
        spacing = float(three_d.get("spacing_mm", 5.0))
        step = max(1, round(spacing / facts.slice_thickness))
        if step > 1:
            return SeriesDecision(True, ANALYSED, f"analysed: {plane} 3D volume of {facts.slice_thickness:g} mm "
                                                  f"slices, every {step}th slice ({spacing:g} mm apart, as the "
                                                  "training slices)", step)
    note = " (3D volume, analysed slice by slice)" if facts.acquisition == "3D" else ""
    return SeriesDecision(True, ANALYSED, f"analysed: {plane} MR series{note}")
