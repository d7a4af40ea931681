"""A Secondary Capture of one key slice's Grad-CAM overlay, for the PACS viewer.

The overlay PNG (as stored by the worker) is scaled up to at least ``MIN_WIDTH`` pixels,
and a band below it carries the legend (the colour scale, low to high) and the words
"AI-generated, not for diagnostic use", burned into the pixels: a viewer that ignores
every header still shows them. The series description says the same.

Input (plain dicts; no Django):
    study   the patient and study modules, as for dicom_out.sr.build_sr
    source  {"series_instance_uid", "sop_class_uid", "sop_instance_uid", "number"}:
            the slice the overlay was drawn on (referenced in Source Image Sequence)
    target  {"series_instance_uid", "sop_instance_uid", "instance_number"}
"""
from __future__ import annotations

import io

import highdicom as hd
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from dicom_out.sr import MANUFACTURER, evidence_dataset

WARNING = "AI-generated, not for diagnostic use"
SERIES_DESCRIPTION = f"BrainAI Grad-CAM overlays ({WARNING})"
MIN_WIDTH = 512
_BAND = 64  # pixels of legend band under the image


def _colour_bar(width: int, height: int) -> Image.Image:
    """The jet-like scale the overlays use (ml.explain.overlay), blue (low) to red (high)."""
    import matplotlib

    ramp = matplotlib.colormaps["jet"](np.linspace(0, 1, width))[:, :3]  # (width, 3) in [0, 1]
    return Image.fromarray((np.repeat(ramp[None], height, axis=0) * 255).astype(np.uint8), "RGB")


def burn_legend(png: bytes) -> np.ndarray:
    """The overlay with the legend band below it: (rows, columns, 3) uint8 RGB."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width < MIN_WIDTH:
        scale = MIN_WIDTH / image.width
        image = image.resize((MIN_WIDTH, round(image.height * scale)), Image.Resampling.NEAREST)
    canvas = Image.new("RGB", (image.width, image.height + _BAND), "black")
    canvas.paste(image, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=18)
    top = image.height
    draw.text((8, top + 4), WARNING, fill="white", font=font)
    bar_left, bar_width = 150, image.width - 230
    draw.text((8, top + 36), "Grad-CAM low", fill="white", font=font)
    canvas.paste(_colour_bar(bar_width, 16), (bar_left, top + 40))
    draw.text((bar_left + bar_width + 8, top + 36), "high", fill="white", font=font)
    return np.asarray(canvas, dtype=np.uint8)


def build_capture(study: dict, source: dict, target: dict, png: bytes) -> Dataset:
    """A Secondary Capture Image of ``png`` with the legend burned in, in ``target``'s series."""
    # Images without tags have no source instance: the reference dataset carries the
    # patient and study modules only, and no Source Image Sequence is written.
    referenced = bool(source.get("sop_instance_uid"))
    ref = evidence_dataset(study, source["series_instance_uid"], source if referenced else {
        "sop_class_uid": source.get("sop_class_uid") or "1.2.840.10008.5.1.4.1.1.7",
        "sop_instance_uid": target["sop_instance_uid"]})
    pixels = burn_legend(png)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=pixels, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=target["series_instance_uid"], series_number=901,
        sop_instance_uid=target["sop_instance_uid"], instance_number=target["instance_number"],
        manufacturer=MANUFACTURER, patient_orientation=("L", "P"), transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    sc.SeriesDescription = SERIES_DESCRIPTION
    sc.ImageComments = f"{WARNING}. Grad-CAM of the model's finding on the referenced slice."
    sc.BurnedInAnnotation = "YES"
    sc.Laterality = ""  # type 2C: brain, unpaired; present and empty
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = "Grad-CAM heatmap blended over the source slice"
    if referenced:
        item = Dataset()
        item.ReferencedSOPClassUID = source["sop_class_uid"]
        item.ReferencedSOPInstanceUID = source["sop_instance_uid"]
        sc.SourceImageSequence = [item]
    return sc
