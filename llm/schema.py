"""What goes into an explanation and what comes out.

The inputs are structured model results only. :meth:`StudyFinding.from_mapping` copies
the whitelisted keys out of whatever record a caller holds (which may also carry the
patient's name, ids, dates, UIDs, file names and DICOM text) and drops everything else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ml.labels import CLASSES, LABELS, STUDY_LABELS


def _check_label(owner: str, label: Any, allowed: tuple[str, ...] = LABELS) -> None:
    if label not in allowed:
        raise ValueError(f"{owner}.label must be one of {', '.join(allowed)}. "
                         f"Received: label={label!r}")


def _check_probabilities(owner: str, probabilities: Any) -> None:
    if not isinstance(probabilities, Mapping):
        raise ValueError(f"{owner}.probabilities must be a dict of class -> probability. "
                         f"Received: {type(probabilities).__name__}")
    for key, value in probabilities.items():
        if key not in CLASSES:
            raise ValueError(f"{owner}.probabilities keys must be among {', '.join(CLASSES)}. "
                             f"Received key: {str(key)[:40]!r}")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not 0.0 <= value <= 1.0):
            raise ValueError(f"{owner}.probabilities[{key!r}] must be a number in [0, 1]. "
                             f"Received: {value!r}")


@dataclass(frozen=True)
class SliceFinding:
    """One image (or DICOM frame) of the study.

    Attributes:
        label: one of LABELS.
        probabilities: calibrated class -> probability (keys among CLASSES).
        in_distribution: the input guard accepted the image as a brain MRI.
        region: heatmap region descriptor, e.g. {"peak": {"x": "left", "y": "anterior",
            "frame": "anatomical"}, "midline": False, "sellar": False, "depth": "deep",
            "hot_area_fraction": 0.08, "hot_spots": 1}; unknown keys are ignored later.
        faithfulness: how much the highlighted region mattered to the model (0-1), or None.
    """

    label: str
    probabilities: dict[str, float]
    in_distribution: bool
    region: dict | None = None
    faithfulness: float | None = None

    def __post_init__(self):
        _check_label("SliceFinding", self.label)
        _check_probabilities("SliceFinding", self.probabilities)


@dataclass(frozen=True)
class StudyFinding:
    """The study-level result that the explanation is about.

    Attributes:
        label: one of STUDY_LABELS; ``not_brain_mri`` when the input guard rejected the study,
            ``indeterminate`` when its slices did not agree (ml.study): never explained as a tumour.
        probabilities: calibrated class -> probability (keys among CLASSES).
        confidence: probability of the predicted class (0-1).
        slices: per-image findings, in study order.
        model_name, model_version: the classifier that produced the finding.
    """

    label: str
    probabilities: dict[str, float]
    confidence: float
    slices: list[SliceFinding] = field(default_factory=list)
    model_name: str = ""
    model_version: str = ""

    def __post_init__(self):
        _check_label("StudyFinding", self.label, STUDY_LABELS)
        _check_probabilities("StudyFinding", self.probabilities)
        c = self.confidence
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not (
                math.isfinite(c) and 0.0 <= c <= 1.0):
            raise ValueError(f"StudyFinding.confidence must be a number in [0, 1]. Received: {c!r}")
        for s in self.slices:
            if not isinstance(s, SliceFinding):
                raise ValueError("StudyFinding.slices must hold SliceFinding objects. "
                                 f"Received: {type(s).__name__}")

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any]) -> "StudyFinding":
        """Build a finding from a record, keeping only the whitelisted result fields.

        Args:
            record: e.g. a report row as a dict. Keys other than label, probabilities,
                confidence, slices, model_name, model_version (and, per slice, label,
                probabilities, in_distribution, region, faithfulness) are ignored: names,
                ids, dates, UIDs, file names and DICOM text never enter the finding.

        Returns:
            The finding.

        Raises:
            ValueError: a whitelisted field has a bad value.
        """
        slices = []
        for s in record.get("slices") or []:
            if not isinstance(s, Mapping):
                raise ValueError("StudyFinding.from_mapping: each slice must be a dict. "
                                 f"Received: {type(s).__name__}")
            in_distribution = s.get("in_distribution", True)
            if not isinstance(in_distribution, bool):
                raise ValueError("SliceFinding.in_distribution must be True or False. "
                                 f"Received: {in_distribution!r}")
            region = s.get("region")
            slices.append(SliceFinding(
                label=s.get("label"),
                probabilities=dict(s.get("probabilities") or {}),
                in_distribution=in_distribution,
                region=dict(region) if isinstance(region, Mapping) else None,
                faithfulness=s.get("faithfulness"),
            ))
        return cls(
            label=record.get("label"),
            probabilities=dict(record.get("probabilities") or {}),
            confidence=record.get("confidence"),
            slices=slices,
            model_name=str(record.get("model_name") or ""),
            model_version=str(record.get("model_version") or ""),
        )


@dataclass(frozen=True)
class Explanation:
    """One explanation, as stored with the report.

    Attributes:
        text: what the clinician reads; always ends with the decision-support notice.
        provider: who wrote ``text``: "gemini", "openai" or "template" (also on fallback).
        model: the model that wrote ``text`` (the template's own version for the template).
        prompt_version: version of the prompt (or of the template) that produced ``text``.
        latency_ms: wall time of the whole call, retries included.
        fallback_reason: why the configured LLM was not used, e.g.
            "timeout: gemini (gemini-2.5-flash) gave no answer within 20 s"; None otherwise.
        attempts: requests sent to the LLM (0 for the template).
    """

    text: str
    provider: str
    model: str
    prompt_version: str
    latency_ms: int
    fallback_reason: str | None = None
    attempts: int = 0

    @property
    def fell_back(self) -> bool:
        return self.fallback_reason is not None

    def as_dict(self) -> dict:
        return {"text": self.text, "provider": self.provider, "model": self.model,
                "prompt_version": self.prompt_version, "latency_ms": self.latency_ms,
                "fallback_reason": self.fallback_reason, "attempts": self.attempts}
