"""The series rules: a versioned JSON file shipped beside this module, or one named by the caller.

The Django side names an override with ``BRAINAI_SERIES_RULES`` (brainai_site/settings.py);
ml/ itself never reads the environment, so a notebook passes a path or takes the default.
Every report records ``Rules.version``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_RULES_PATH = Path(__file__).with_name("series_rules.json")
_REQUIRED = ("version", "modalities", "image_type_exclude", "description_exclude", "min_matrix",
             "planes", "three_d_isotropic", "slice", "study")


class RulesError(ValueError):
    """The rules file is missing, not JSON, or lacks a field the rules need."""


@dataclass(frozen=True)
class Rules:
    """Parsed series rules; ``raw`` is the file's JSON as loaded."""

    raw: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.raw["version"])

    @property
    def image_type_exclude(self) -> list[tuple[str, str]]:
        return [(str(token).upper(), reason) for token, reason in self.raw["image_type_exclude"]]

    @property
    def description_exclude(self) -> list[tuple[re.Pattern, str]]:
        return [(re.compile(pattern, re.IGNORECASE), reason) for pattern, reason in self.raw["description_exclude"]]

    @property
    def description_include(self) -> list[re.Pattern]:
        return [re.compile(p, re.IGNORECASE) for p in self.raw.get("description_include") or []]

    @property
    def k(self) -> int:
        """Contiguous supporting slices a tumour label needs."""
        return int(self.raw["study"]["k"])

    @property
    def t(self) -> float:
        """Calibrated p(class) a slice needs to support that class."""
        return float(self.raw["study"]["t"])

    @property
    def reference_mm(self) -> float | None:
        """The slice thickness k is counted in (the training slices': about 5 mm)."""
        value = self.raw["study"].get("reference_thickness_mm")
        return float(value) if value else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


def load_rules(path: str | Path | None = None) -> Rules:
    """Read the rules from ``path`` (None: the shipped default); cached per path.

    Raises:
        RulesError: the file cannot be read, is not JSON, or lacks a required field.
    """
    return _load(str(Path(path or DEFAULT_RULES_PATH).resolve()))


@lru_cache(maxsize=8)
def _load(path: str) -> Rules:
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RulesError(f"series rules {path} cannot be read: {exc}") from exc
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise RulesError(f"series rules {path} lack {', '.join(missing)}")
    if not {"k", "t"} <= set(raw["study"]):
        raise RulesError(f"series rules {path}: 'study' needs k and t")
    return Rules(raw)
