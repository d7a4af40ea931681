"""An indeterminate study (ml.study: the slices did not agree) is never explained as a tumour, nor as none."""
from __future__ import annotations

from llm import StudyFinding
from llm.prompt import build_prompt
from llm.template import render
from llm.validate import find_problem

FINDING = StudyFinding.from_mapping({"label": "indeterminate", "probabilities": {}, "confidence": 0.0, "slices": [
    {"label": "meningioma", "probabilities": {"meningioma": 0.99, "notumor": 0.01}, "in_distribution": True}]})


def test_the_offline_text_says_indeterminate_and_passes_the_validator():
    text = render(FINDING)
    assert "indeterminate" in text and find_problem(text, "indeterminate") is None


def test_an_answer_that_names_a_tumour_or_denies_one_is_refused():
    assert "names meningioma" in find_problem("Indeterminate, probably a meningioma.", "indeterminate")
    assert "no tumour" in find_problem("Indeterminate; no tumour is seen.", "indeterminate")
    assert find_problem("The finding is inconclusive.", "indeterminate")


def test_the_prompt_forbids_every_tumour_name_and_no_tumour():
    user = build_prompt(FINDING).user
    for word in ("glioma", "meningioma", "pituitary", "no tumour"):
        assert word in user.split("Words you must not use:")[1]
