"""LLM explanations of a finding: Gemini, an on-prem OpenAI-compatible server, or an
offline template; grounded in structured results only, free of patient identifiers, and
never holding a report back. Start at :func:`explain`; see docs/explanations.md.
"""
from ml.llm.config import LLMConfig
from ml.llm.explain import explain, warm_up
from ml.llm.prompt import PROMPT_VERSION, build_prompt
from ml.llm.schema import (CLASSES, LABELS, NOT_BRAIN_MRI, Explanation, SliceFinding,
                           StudyFinding)
from ml.llm.template import TEMPLATE_VERSION
from ml.llm.validate import find_problem

__all__ = [
    "CLASSES", "LABELS", "NOT_BRAIN_MRI", "PROMPT_VERSION", "TEMPLATE_VERSION",
    "Explanation", "LLMConfig", "SliceFinding", "StudyFinding",
    "build_prompt", "explain", "find_problem", "warm_up",
]
