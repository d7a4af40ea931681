"""The offline template: deterministic, label-true, always carries the notice."""
import pytest

from llm import LABELS, LLMConfig, SliceFinding, StudyFinding, explain, find_problem
from llm.template import TEMPLATE_VERSION, describe_region, render
from llm.validate import NOTICE
from tests.builders import seeded_record


@pytest.mark.parametrize("label", LABELS)
def test_it_agrees_with_every_label(label):
    text = render(StudyFinding.from_mapping(seeded_record(label)))
    assert find_problem(text, label) is None
    assert text.endswith(NOTICE)


def test_it_says_a_rejected_image_was_not_assessed():
    text = render(StudyFinding.from_mapping(seeded_record("not_brain_mri")))
    assert "does not appear to be a brain MRI" in text
    assert "no tumour assessment was made" in text


def test_it_is_deterministic():
    finding = StudyFinding.from_mapping(seeded_record("meningioma", n_slices=5))
    assert render(finding) == render(finding)


def test_it_describes_the_heatmap_of_a_tumour():
    finding = StudyFinding(
        label="glioma", probabilities={"glioma": 0.9, "notumor": 0.1}, confidence=0.9,
        slices=[SliceFinding("glioma", {"glioma": 0.9}, True, faithfulness=0.64, region={
            "peak": {"x": "left", "y": "anterior", "frame": "anatomical"}, "midline": True,
            "depth": "deep", "hot_area_fraction": 0.08, "hot_spots": 1})],
        model_name="xception", model_version="3f9c2ab41e07")
    text = render(finding)
    assert ("the heatmap peaks in the left anterior region (deep, near the midline), with 1 hot "
            "spot covering about 8% of the image.") in text
    assert "0.64" in text
    assert "xception version 3f9c2ab41e07" in text


def test_it_marks_image_orientation_as_such():
    words = describe_region({"peak": {"x": "right", "y": "top", "frame": "image"}})
    assert "image orientation" in words


def test_it_describes_a_region_without_a_peak():
    assert describe_region({"hot_area_fraction": 0.12, "hot_spots": 2}) == \
        "shows 2 hot spots covering about 12% of the image"
    assert describe_region({}) == "has no clear peak"


def test_it_works_without_slices():
    finding = StudyFinding(label="notumor", probabilities={"notumor": 0.97}, confidence=0.97)
    assert find_problem(render(finding), "notumor") is None


def test_the_template_provider_answers_at_once():
    finding = StudyFinding.from_mapping(seeded_record("pituitary"))
    explanation = explain(finding, LLMConfig(provider="template"))
    assert explanation.provider == "template"
    assert explanation.prompt_version == TEMPLATE_VERSION
    assert explanation.fallback_reason is None and explanation.attempts == 0
    assert explanation.latency_ms < 1000
