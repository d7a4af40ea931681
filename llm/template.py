"""The offline explanation: deterministic text from the same facts the LLM gets.

Always available, no network, and the fallback whenever an LLM fails. Its wording obeys
the same rules as the LLM's (it names only the predicted class), so it passes
:func:`llm.validate.find_problem` for every label. Bump TEMPLATE_VERSION when the
wording changes: it is stored as the explanation's prompt version.
"""
from __future__ import annotations

from typing import Any

from llm.prompt import LABEL_WORDING, facts
from llm.schema import StudyFinding
from llm.validate import with_notice
from ml.labels import INDETERMINATE, NOT_BRAIN_MRI

TEMPLATE_VERSION = "template-v1"
TEMPLATE_MODEL = "template"


def render(finding: StudyFinding) -> str:
    """Write the explanation for a finding.

    Args:
        finding: the structured result.

    Returns:
        Plain text ending with the decision-support notice.
    """
    f = facts(finding)
    label = finding.label
    guard = f["input_guard"]
    model = f["model"]
    model_line = f"Model: {model['name']} version {model['version']}."

    if label == NOT_BRAIN_MRI:
        rejected = ""
        if guard["images"]:
            rejected = (f" {guard['images_rejected']} of {guard['images']} images did not "
                        "pass the input check.")
        text = ("AI finding: not a brain MRI. The input check found that the image does not "
                "appear to be a brain MRI, so no tumour assessment was made." + rejected +
                " Please check that the intended brain MRI series was uploaded and review "
                "the images directly. " + model_line)
        return with_notice(text)

    if label == INDETERMINATE:
        text = ("AI finding: indeterminate. The slices the model analysed did not give consistent "
                "evidence either way, or no series of the study could be analysed, so the model makes "
                "no tumour assessment for this study. Please review the images directly; the report "
                "lists the evidence and every series or slice that was not analysed. " + model_line)
        return with_notice(text)

    wording = LABEL_WORDING[label]
    confidence = f["study"]["confidence"]
    parts = [f"AI finding: {wording} (calibrated probability {_pct(confidence)}; the other "
             f"classes share the remaining {_pct(1.0 - confidence)})."]
    if guard["images"]:
        assessed = guard["images_accepted"]
        same = f["slice_labels"].get(label, 0)
        line = f"{assessed} of {guard['images']} images passed the input check as brain MRI"
        if guard["images_rejected"]:
            n = guard["images_rejected"]
            line += f"; {n} did not and {'was' if n == 1 else 'were'} not assessed"
        parts.append(line + f". {same} of {assessed} assessed images were classified as {wording}.")
    key = f["key_slices"][0] if f["key_slices"] else None
    if key and "heatmap_region" in key:
        parts.append(f"On the most supportive image (image {key['image']}, probability "
                     f"{_pct(key['probability_of_predicted_class'])}), the heatmap "
                     f"{describe_region(key['heatmap_region'])}.")
    if key and "heatmap_faithfulness" in key:
        parts.append(f"Heatmap faithfulness on image {key['image']}: "
                     f"{key['heatmap_faithfulness']:.2f} (0-1; higher means the highlighted "
                     "area mattered more to the model).")
    if label == "notumor":
        parts.append("Caveats: a probability is not certainty, and a small or subtle "
                     "abnormality can be missed; the model saw only these images, without "
                     "clinical context or other sequences.")
    else:
        parts.append("Caveats: a probability is not certainty; the heatmap shows where the "
                     "model looked, not the tumour or its borders; the model saw only these "
                     "images, without clinical context or other sequences.")
    parts.append(model_line)
    return with_notice(" ".join(parts))


def describe_region(region: dict[str, Any]) -> str:
    """A clause for a cleaned region descriptor (see :func:`llm.prompt.clean_region`).

    E.g. "peaks in the left anterior region (deep, near the midline), with 1 hot spot
    covering about 8% of the image".
    """
    peak = region.get("peak")
    head = ""
    if peak:
        where = " ".join(peak[a] for a in ("x", "y") if a in peak)
        if peak.get("frame") == "anatomical":
            head = f"peaks in the {where} region"
        else:
            head = (f"peaks towards the {where} of the image (image orientation; "
                    "patient side not established)")
    qualifiers = [region["depth"]] if region.get("depth") else []
    if region.get("midline"):
        qualifiers.append("near the midline")
    if region.get("sellar"):
        qualifiers.append("near the sellar region")
    extent = ""
    if "hot_area_fraction" in region:
        spots = region.get("hot_spots")
        area = f"about {_pct(region['hot_area_fraction'])} of the image"
        extent = (f"{spots} hot spot{'' if spots == 1 else 's'} covering {area}"
                  if spots is not None else f"{area} highlighted")
    suffix = f" ({', '.join(qualifiers)})" if qualifiers else ""
    if head:
        return head + suffix + (f", with {extent}" if extent else "")
    if extent:
        return f"shows {extent}{suffix}"
    return "has no clear peak" + suffix


def _pct(p: float) -> str:
    value = round(100 * p)
    if value == 0 and p > 0:
        return "<1%"
    if value == 100 and p < 1:
        return ">99%"
    return f"{value}%"
