"""Series selection, slice selection and the study finding (ml.study), on real and realistic headers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from ml.io.read import read_frames
from ml.study import SeriesEvidence, SeriesFacts, SliceScore, decide_series, decide_slice, load_rules, study_finding
from tests import builders as b

DEV = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dicom-series-dev"
RULES = load_rules()


def _facts(folder: str) -> SeriesFacts:
    files = sorted((DEV / folder).glob("*.dcm"))
    assert files, f"{DEV / folder} holds no DICOM"
    return SeriesFacts.from_metas([read_frames(f.read_bytes())[0].meta for f in files])


@pytest.mark.parametrize("folder, what", [("fmri_mosaic", "fMRI"), ("dwi_mosaic", "diffusion (DWI)")])
def test_a_real_siemens_mosaic_is_never_analysed(folder, what):
    decision = decide_series(_facts(folder), RULES)
    assert not decision.analysed and decision.reason == f"Siemens MOSAIC: tiled {what}, not one slice"


def test_a_real_field_map_is_not_analysed_with_its_reason():
    decision = decide_series(_facts("field_map"), RULES)
    assert not decision.analysed and "field map" in decision.reason


def _meta(**over):
    meta = read_frames(b.dicom_bytes())[0].meta
    meta.update(over)
    return meta


@pytest.mark.parametrize("over, code, words", [
    ({"image_type": ["ORIGINAL", "PRIMARY", "P", "ND"]}, "image_type", "phase image: not an anatomical image"),
    ({"image_type": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, "image_type", "localizer"),
    ({"image_type": ["DERIVED", "PRIMARY", "ADC"]}, "image_type", "ADC"),
    ({"series_description": "AAHead_Scout_32ch"}, "description", "localizer"),
    ({"series_description": "ep2d_bold_rest"}, "description", "BOLD/fMRI"),
    ({"series_description": "SWI_Images"}, "description", "SWI"),
    ({"series_description": "tof_fl3d_tra"}, "description", "TOF"),
    ({"modality": "CT"}, "modality", "MR only"),
    ({"size": [64, 64]}, "matrix", "64×64 matrix: below the 128-pixel minimum"),
    ({"pixel_spacing": [3.5, 3.5]}, "pixel_spacing", "coarser"),
    ({"slice_thickness": 12.0}, "slice_thickness", "thicker"),
    ({"image_orientation_patient": [0.7, 0.7, 0, 0, 0.7, 0.7]}, "plane", "oblique"),
])
def test_each_exclusion_rule_names_its_reason(over, code, words):
    decision = decide_series(SeriesFacts.from_metas([_meta(**over)]), RULES)
    assert (decision.analysed, decision.code) == (False, code) and words in decision.reason


def test_an_axial_t1_series_is_analysed_and_pydicoms_derived_mr_is_not():
    assert decide_series(SeriesFacts.from_metas([_meta()]), RULES).analysed
    derived = read_frames(Path(get_testdata_file("MR_small.dcm")).read_bytes())[0].meta
    assert decide_series(SeriesFacts.from_metas([derived]), RULES).code == "image_type"


def test_edge_slices_without_anatomy_are_skipped_and_a_head_is_kept():
    head = b.phantom(128, 1).astype(np.float32) / 255.0
    noise = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    assert decide_slice(head, RULES, signal_level=1000.0, series_level=1000.0).analysed
    empty = decide_slice(noise, RULES, signal_level=30.0, series_level=1000.0)
    assert not empty.analysed and "empty slice" in empty.reason
    sliver = np.zeros((128, 128), np.float32)
    sliver[:6, 50:70] = 1.0
    assert "too little head" in decide_slice(sliver, RULES).reason


def _series(probs: list[dict], number=4) -> SeriesEvidence:
    facts = SeriesFacts(description="T1 post-contrast", number=number, plane="axial")
    return SeriesEvidence(facts, [SliceScore(i + 1, p, True, i) for i, p in enumerate(probs)])


NORMAL = {"glioma": 0.01, "meningioma": 0.01, "notumor": 0.97, "pituitary": 0.01}
MENINGIOMA = {"glioma": 0.01, "meningioma": 0.97, "notumor": 0.01, "pituitary": 0.01}
UNSURE = {"glioma": 0.3, "meningioma": 0.2, "notumor": 0.4, "pituitary": 0.1}


def test_k_contiguous_supporting_slices_give_the_tumour_label_with_evidence():
    finding = study_finding([_series([NORMAL] * 8 + [MENINGIOMA] * 7 + [NORMAL] * 7)], k=3, t=0.9)
    assert finding.label == "meningioma"
    assert finding.evidence == ("7 of 22 slices in series 4 (T1 post-contrast, axial) support meningioma, "
                                "contiguous from slice 9 to 15")


def test_normal_slices_with_one_confident_false_slice_are_never_a_tumour():
    finding = study_finding([_series([NORMAL] * 10 + [MENINGIOMA] + [NORMAL] * 10)], k=3, t=0.9)
    assert finding.label in {"notumor", "indeterminate"} and finding.label == "indeterminate"


def test_confidently_normal_slices_are_no_tumour():
    assert study_finding([_series([NORMAL] * 20)], k=3, t=0.9).label == "notumor"


def test_a_model_unsure_on_most_slices_is_indeterminate():
    assert study_finding([_series([UNSURE] * 20)], k=3, t=0.9).label == "indeterminate"


def test_a_study_with_no_analysable_series_is_indeterminate_with_the_reasons():
    finding = study_finding([], k=3, t=0.9, not_analysed=["series 2: phase image: not an anatomical image"])
    assert finding.label == "indeterminate" and "phase image" in finding.evidence


def test_the_shipped_rules_carry_a_version_k_and_t():
    assert RULES.version and RULES.k >= 2 and 0.5 < RULES.t < 1.0


def test_thin_slices_need_proportionally_more_agreeing_slices():
    thin = _series([NORMAL] * 20 + [MENINGIOMA] * 4 + [NORMAL] * 20)
    thin.facts.slice_thickness = 1.0
    assert study_finding([thin], k=2, t=0.9, reference_mm=5.0).label == "indeterminate"  # 4 mm < 2 x 5 mm
    thin.slices[24:30] = [SliceScore(25 + i, MENINGIOMA, True) for i in range(6)]
    assert study_finding([thin], k=2, t=0.9, reference_mm=5.0).label == "meningioma"


def test_the_evaluation_command_names_every_real_series_it_does_not_analyse(tmp_path, capsys):
    from ml.evaluation.studies import main

    out = tmp_path / "studies.json"
    assert main([str(DEV), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("not analysed — Siemens MOSAIC: tiled fMRI, not one slice") == 1
    assert printed.count("not analysed — Siemens MOSAIC: tiled diffusion (DWI), not one slice") == 1
    assert "not analysed — field map: not an anatomical image" in printed
    data = __import__("json").loads(out.read_text())
    assert data["model"] is None and data["rules_version"] == RULES.version
    assert all(s["finding"]["label"] == "indeterminate" for s in data["studies"])


def test_a_thin_3d_volume_is_sampled_at_the_training_spacing():
    meta = _meta(mr_acquisition_type="3D", slice_thickness=1.0, image_orientation_patient=[0, 1, 0, 0, 0, -1])
    decision = decide_series(SeriesFacts.from_metas([meta] * 176), RULES)
    assert decision.analysed and decision.step == 5 and "every 5th slice" in decision.reason
    assert decide_series(SeriesFacts.from_metas([_meta()] * 20), RULES).step == 1  # 2D series: every slice
