"""LLM explanations of a finding: Gemini, an on-prem OpenAI-compatible server, or an
offline template; grounded in structured results only, free of patient identifiers, and
never holding a report back. Start at :func:`explain`; see docs/explanations.md.
"""
from llm.config import LLMConfig
from llm.explain import explain, warm_up
from llm.prompt import PROMPT_VERSION, build_prompt
from llm.schema import Explanation, SliceFinding, StudyFinding
from llm.template import TEMPLATE_VERSION
from llm.validate import find_problem
from ml.labels import CLASSES, LABELS, NOT_BRAIN_MRI

__all__ = [
    "CLASSES", "LABELS", "NOT_BRAIN_MRI", "PROMPT_VERSION", "TEMPLATE_VERSION",
    "Explanation", "LLMConfig", "SliceFinding", "StudyFinding",
    "build_prompt", "explain", "find_problem", "warm_up",
]
