"""The classifier's labels, written once: every other module imports them from here.

The four classes are the model's outputs, in the order of its logits (the Kaggle folder
names, sorted). ``not_brain_mri`` is not a class the model predicts: the input guard gives
it to an image that is not a brain MRI slice at all.
"""
from __future__ import annotations

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")  # logit order
TUMOUR_CLASSES = ("glioma", "meningioma", "pituitary")
NO_TUMOUR = "notumor"
NOT_BRAIN_MRI = "not_brain_mri"  # the input guard rejected the image
LABELS = CLASSES + (NOT_BRAIN_MRI,)  # every label a slice or a study can carry
# A study whose evidence does not agree (or that holds no analysable series): a person
# reviews it. Never a slice's label; only a study's (ml.study.finding).
INDETERMINATE = "indeterminate"
STUDY_LABELS = LABELS + (INDETERMINATE,)
