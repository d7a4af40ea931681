"""Checks an LLM's text against the label before anyone reads it.

A text is usable when it is not empty, names the predicted class, and does not
contradict it: no other tumour class, no "no tumour" for a tumour, no tumour claim for
"no tumour", no tumour assessment at all for an image that is not a brain MRI. The
checks are deliberately strict: a false alarm costs a retry or the template, a missed
contradiction would reach a clinician.
"""
from __future__ import annotations

import re

from llm.prompt import LABEL_WORDING
from ml.labels import INDETERMINATE, TUMOUR_CLASSES

NOTICE = "AI-generated decision support; requires review by a radiologist; not a diagnosis."
MAX_CHARS = 3000

_FLAGS = re.IGNORECASE
_A = r"(?:an? |any |the )?"
_CLASS_NAMES = {
    "glioma": re.compile(r"\bglioma|\bglioblastoma", _FLAGS),
    "meningioma": re.compile(r"\bmeningioma", _FLAGS),
    "pituitary": re.compile(r"\bpituitary\b|\b(?:macro|micro)?adenoma", _FLAGS),
}
_REQUIRED_NAMES = {
    "glioma": re.compile(r"\bgliomas?\b", _FLAGS),
    "meningioma": re.compile(r"\bmeningiomas?\b", _FLAGS),
    "pituitary": re.compile(r"\bpituitary\b", _FLAGS),
}
# The predicted class named only to be denied ("this is not a glioma").
_DENIED = {
    name: re.compile(r"\b(?:(?:is|was|are|be|appears?|seems?) (?:not|unlikely to be)"
                     r"|not consistent with|against|no) (?:an? )?" + name, _FLAGS)
    for name in ("glioma", "meningioma", "pituitary")
}
# "No tumour" said of the study ("no tumour assessment was made" is not such a claim).
_NO_TUMOUR = re.compile(
    r"\bno (?:evidence|sign|signs|indication) of " + _A + r"(?:brain )?tumou?rs?\b"
    r"|\bno (?:brain )?tumou?rs?\b(?! assessment| classification| evaluation| analysis)"
    r"|\bnotumou?r\b|\btumou?r[- ]free\b|\bwithout " + _A + r"(?:brain )?tumou?r"
    r"|\b(?:did|does|do) not (?:detect|find|show|identify|see|suggest) " + _A + r"(?:brain )?tumou?r"
    r"|\bnegative for " + _A + r"(?:brain )?tumou?r|\babsence of " + _A + r"(?:brain )?tumou?r",
    _FLAGS)
# A tumour said to be there; negated uses ("did not detect a tumour") are let through.
_TUMOUR_CLAIM = re.compile(
    r"\b(?:suggest\w*|indicat\w*|consistent with|shows?|showing|detect\w*|found|finds|"
    r"identif\w*|reveal\w*|represent\w*|favou?r\w*) " + _A
    + r"(?:possible |probable |likely |suspected )?(?:brain )?(?:tumou?r|mass|lesion|neoplasm)"
    r"|\btumou?r (?:is|was|are|were) (?:present|detected|seen|identified|visible|suspected|likely)",
    _FLAGS)
_NOT_BRAIN_MRI = re.compile(
    r"\b(?:not|n't) (?:appear to be |seem to be |look like |be |show )?an? (?:brain )?mri\b"
    r"|\bnot_brain_mri\b|\bnot (?:a |an )?brain mri\b|\bnot recogni[sz]ed as (?:an? )?brain mri",
    _FLAGS)
_NEGATION = re.compile(r"\b(?:no|not|never|without|neither|nor|absence|cannot)\b|n't\b", _FLAGS)
# Where a negation stops applying: a sentence or clause boundary.
_CLAUSE_END = re.compile(r"[.!?;,:]\s|\b(?:but|however|although|though|yet|whereas)\b", _FLAGS)


def find_problem(text: str | None, label: str) -> str | None:
    """Say what is wrong with an explanation, or None when it is usable.

    Args:
        text: the LLM's answer.
        label: the predicted label (one of ml.labels.LABELS).

    Returns:
        None, or a short reason such as "it names meningioma but the predicted class is
        glioma" (built from labels and fixed text only, safe to send back in a retry).
    """
    if text is None or not text.strip():
        return "it was empty"
    if len(text) > MAX_CHARS:
        return f"it was longer than {MAX_CHARS} characters"
    wording = LABEL_WORDING[label]
    if label in TUMOUR_CLASSES:
        if not _REQUIRED_NAMES[label].search(text):
            return f"it does not name the predicted class ({wording})"
        for other in TUMOUR_CLASSES:
            if other != label and _CLASS_NAMES[other].search(text):
                return f"it names {LABEL_WORDING[other]} but the predicted class is {wording}"
        if _DENIED[label].search(text):
            return f"it denies the predicted class ({wording})"
        if _NO_TUMOUR.search(text):
            return f"it says there is no tumour but the predicted class is {wording}"
        return None
    for other in TUMOUR_CLASSES:
        if _CLASS_NAMES[other].search(text):
            return f"it names {LABEL_WORDING[other]} but the predicted class is {wording}"
    if _affirmed(_TUMOUR_CLAIM, text):
        return f"it says a tumour is present but the predicted class is {wording}"
    if label == "notumor":
        if not _NO_TUMOUR.search(text):
            return "it does not state the predicted class (no tumour)"
        return None
    if label == INDETERMINATE:  # neither a tumour (refused above) nor its absence
        if not re.search(r"\bindeterminate\b", text, re.IGNORECASE):
            return "it does not state the predicted class (indeterminate)"
        if _NO_TUMOUR.search(text):
            return "it says there is no tumour but the finding is indeterminate"
        return None
    # not_brain_mri: the guard rejected the image, so no tumour assessment at all.
    if not _NOT_BRAIN_MRI.search(text):
        return "it does not say that the image does not appear to be a brain MRI"
    if _NO_TUMOUR.search(text):
        return "it assesses tumours although the image was rejected as not a brain MRI"
    return None


def with_notice(text: str) -> str:
    """The text, tidied, ending with the decision-support notice (added when missing)."""
    body = re.sub(r"[ \t]+", " ", text.strip())
    body = re.sub(r"\n{3,}", "\n\n", body)
    low = body.lower()
    if "decision support" in low and "not a diagnosis" in low and "review" in low:
        return body
    return f"{body}\n\n{NOTICE}"


def _affirmed(pattern: re.Pattern, text: str) -> bool:
    """True when pattern matches somewhere not negated earlier in the same clause."""
    for match in pattern.finditer(text):
        ends = [m.end() for m in _CLAUSE_END.finditer(text, 0, match.start())]
        start = ends[-1] if ends else 0
        if not _NEGATION.search(text[start:match.start()]):
            return True
    return False
