"""The priority settings, read without Django: the upload rules and the research window.

``BRAINAI_PRIORITY_RULES``: a JSON list (inline, or ``@/path/to/rules.json``) of rules,
the first that matches gives a study its lane at upload::

    [{"calling_ae": "ER_CT", "priority": "urgent"},
     {"description": "(?i)stroke|trauma", "priority": "urgent"},
     {"description": "(?i)^research", "priority": "research"}]

Each rule names at least one condition: ``calling_ae`` (the DICOM sender's AE title,
exact, spaces trimmed) and/or ``description`` (a regular expression searched in the
study description); all it names must match.

``BRAINAI_RESEARCH_HOURS``: ``"20-06"`` = research work starts only from 20:00 to 06:00
local time (the window may wrap midnight); empty = any time. settings.py parses both at
start, so a bad value stops the process with the variable's name.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PRIORITIES = ("urgent", "routine", "research")


@dataclass(frozen=True)
class PriorityRule:
    priority: str
    calling_ae: str = ""
    description: re.Pattern | None = None

    def matches(self, *, calling_ae: str = "", description: str = "") -> bool:
        if self.calling_ae and (calling_ae or "").strip() != self.calling_ae:
            return False
        if self.description is not None and not self.description.search(description or ""):
            return False
        return True


@lru_cache(maxsize=8)
def parse_rules(text: str | None) -> tuple[PriorityRule, ...]:
    """The rules of ``BRAINAI_PRIORITY_RULES``; ValueError says what is wrong (never the value)."""
    text = (text or "").strip()
    if not text:
        return ()
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise ValueError(f"BRAINAI_PRIORITY_RULES: cannot read the rules file ({exc.strerror})") from None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"BRAINAI_PRIORITY_RULES is not valid JSON ({exc})") from None
    if not isinstance(raw, list):
        raise ValueError("BRAINAI_PRIORITY_RULES must be a JSON list of rules")
    rules = []
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise ValueError(f"BRAINAI_PRIORITY_RULES rule {n} is not an object")
        unknown = set(item) - {"calling_ae", "description", "priority"}
        if unknown:
            raise ValueError(f"BRAINAI_PRIORITY_RULES rule {n}: unknown keys {sorted(unknown)}")
        if item.get("priority") not in PRIORITIES:
            raise ValueError(f"BRAINAI_PRIORITY_RULES rule {n}: priority must be one of {', '.join(PRIORITIES)}")
        ae, description = item.get("calling_ae") or "", item.get("description") or ""
        if not isinstance(ae, str) or not isinstance(description, str):
            raise ValueError(f"BRAINAI_PRIORITY_RULES rule {n}: calling_ae and description are strings")
        if not ae.strip() and not description:
            raise ValueError(f"BRAINAI_PRIORITY_RULES rule {n} has no condition (calling_ae or description)")
        try:
            pattern = re.compile(description) if description else None
        except re.error as exc:
            raise ValueError(f"BRAINAI_PRIORITY_RULES rule {n}: bad description pattern ({exc})") from None
        rules.append(PriorityRule(item["priority"], ae.strip(), pattern))
    return tuple(rules)


@lru_cache(maxsize=8)
def parse_hours(text: str | None) -> tuple[int, int] | None:
    """``"20-06"`` -> (20, 6); empty -> None (any time). ValueError for anything else."""
    text = (text or "").strip()
    if not text:
        return None
    match = re.fullmatch(r"(\d{1,2})(?::00)?\s*-\s*(\d{1,2})(?::00)?", text)
    if not match:
        raise ValueError("BRAINAI_RESEARCH_HOURS must look like 20-06 (start hour - end hour, local time)")
    start, end = int(match[1]), int(match[2])
    if not (0 <= start <= 23 and 0 <= end <= 24) or start == end % 24:
        raise ValueError("BRAINAI_RESEARCH_HOURS: hours are 0-23 (end may be 24) and start differs from end")
    return start, end


def in_window(hours: tuple[int, int] | None, hour: int) -> bool:
    """Whether ``hour`` (0-23) is inside the window ``[start, end)``; wraps midnight."""
    if hours is None:
        return True
    start, end = hours
    if start < end:
        return start <= hour < end
    return hour >= start or hour < end
