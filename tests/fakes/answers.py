"""What the fake LLMs write: read the label from the prompt, answer in kind.

Independent of the llm package's own wording on purpose, so a test of the validator or of the
template cannot pass just because both sides share one sentence.
"""
from __future__ import annotations

import re

_LABEL = re.compile(r'"predicted_class":\s*"([a-z_]+)"')
_CONFIDENCE = re.compile(r'"confidence":\s*([0-9.]+)')
_NOTICE = "AI-generated decision support; requires review by a radiologist; not a diagnosis."
_NAMES = {"glioma": "glioma", "meningioma": "meningioma", "pituitary": "pituitary tumour"}


def read_label(prompt_text: str) -> str | None:
    match = _LABEL.search(prompt_text)
    return match.group(1) if match else None


def _pct(p: float) -> str:
    # As a careful clinician would write it: never "100%" for a probability below 1.
    from llm.template import _pct as template_pct

    return template_pct(p)


def consistent_answer(prompt_text: str) -> str:
    """A short explanation that agrees with the label found in the prompt."""
    label = read_label(prompt_text)
    match = _CONFIDENCE.search(prompt_text)
    pct = _pct(float(match.group(1))) if match else "an unstated probability"
    if label in _NAMES:
        return (f"The model's finding for this study is {_NAMES[label]}, with a calibrated "
                f"probability of {pct}; the other classes share the rest. The input check "
                "accepted the images as brain MRI. The heatmap shows where the model looked, "
                "not the borders of a lesion, and the model had no clinical context, so a "
                f"probability is not certainty. {_NOTICE}")
    if label == "notumor":
        return (f"The model found no tumour on these images (calibrated probability {pct}). "
                "A small or subtle abnormality can be missed and the model had no clinical "
                f"context. {_NOTICE}")
    if label == "not_brain_mri":
        return ("The image does not appear to be a brain MRI, so no tumour assessment was "
                f"made. Please check that the intended series was uploaded. {_NOTICE}")
    return "I could not find a result to explain."


def contradicting_answer(prompt_text: str) -> str:
    """An answer that contradicts the label found in the prompt."""
    label = read_label(prompt_text)
    if label == "glioma":
        return "The model predicted glioma, but the appearance is typical of a meningioma."
    if label in ("meningioma", "pituitary"):
        return f"The model predicted {_NAMES[label]}; however there is no tumour here."
    if label == "notumor":
        return "The model found no tumour, yet the scan shows a glioma in the left lobe."
    return "This brain MRI shows a pituitary tumour."
