"""find_problem: an explanation must name the predicted class and not contradict it."""
import pytest

from llm.validate import NOTICE, find_problem, with_notice

GOOD = [
    ("glioma", "The model's finding is glioma (calibrated probability 87%)."),
    ("glioma", "Gliomas are the predicted class here; the other classes share 13%."),
    ("meningioma", "Predicted class: meningioma, probability 91%. The heatmap is extra-axial."),
    ("glioma", "Glioma (87%). The heatmap shows where the model looked, not the glioma itself."),
    ("pituitary", "The model predicts a pituitary tumour, with the heatmap near the sellar region."),
    ("notumor", "The model found no tumour on these images (probability 95%)."),
    ("notumor", "No evidence of a tumor was found by the model; it did not detect a tumour."),
    ("not_brain_mri", "The image does not appear to be a brain MRI, so no tumour assessment "
                      "was made."),
    ("not_brain_mri", "This is not a brain MRI according to the input check; please re-upload."),
]

BAD = [
    ("glioma", "", "empty"),
    ("glioma", "   \n ", "empty"),
    ("glioma", "The model's finding is a brain tumour.", "does not name"),
    ("glioma", "The model predicted glioma, but it looks like a meningioma.", "names meningioma"),
    ("glioma", "Glioma or possibly a pituitary adenoma.", "names pituitary"),
    ("meningioma", "Meningioma was predicted, yet there is no tumour.", "no tumour"),
    ("glioma", "The class is glioma, but this is not a glioma.", "denies"),
    ("pituitary", "Pituitary class predicted; the lesion appears unlikely to be pituitary.",
     "denies"),
    ("meningioma", "Meningioma probability 0.2; the scan is tumor-free.", "no tumour"),
    ("pituitary", "Pituitary class; glioblastoma cannot be excluded.", "names glioma"),
    ("notumor", "The scan shows a glioma in the left lobe.", "names glioma"),
    ("notumor", "No tumour class, but the heatmap suggests a mass.", "tumour is present"),
    ("notumor", "The model's finding is normal.", "does not state"),
    ("not_brain_mri", "The brain MRI shows a meningioma.", "names meningioma"),
    ("not_brain_mri", "The image is not a brain MRI and no tumour was found.", "assesses tumours"),
    ("not_brain_mri", "The model could not classify the image.", "does not say"),
    ("glioma", "glioma " * 1000, "longer"),
]


@pytest.mark.parametrize("label, text", GOOD)
def test_it_accepts_a_text_that_agrees_with_the_label(label, text):
    assert find_problem(text, label) is None


@pytest.mark.parametrize("label, text, problem", BAD)
def test_it_rejects_a_text_that_is_empty_vague_or_contradicting(label, text, problem):
    found = find_problem(text, label)
    assert found is not None and problem in found


def test_the_notice_is_added_once():
    text = with_notice("The model's finding is glioma.")
    assert text.endswith(NOTICE)
    assert with_notice(text) == text
