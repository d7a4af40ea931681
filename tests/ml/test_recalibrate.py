"""ml.training.recalibrate: change a shipped model's TTA and guard without retraining."""
import copy

import pytest

from ml.model import registry
from ml.training.recalibrate import borrow_guard
from ml.training.recalibrate import main as recalibrate_main


def _borrower(lender_meta: dict) -> dict:
    meta = copy.deepcopy(lender_meta)
    meta["guard_evaluation"] = {"auroc": 0.5, "borrowed_from": {"name": "old", "why": "its own was poor"}}
    return meta


def test_borrowing_drops_the_own_guard_and_copies_the_lenders_evaluation():
    cnn = registry.get("cnn")
    meta = borrow_guard(_borrower(cnn.metadata), cnn)
    assert "guard" not in meta and meta["guard_model"] == "cnn"
    assert meta["own_guard_evaluation"]["auroc"] == 0.5
    assert meta["guard_evaluation"]["auroc"] == cnn.metadata["guard_evaluation"]["auroc"]
    assert meta["guard_evaluation"]["borrowed_from"] == {"name": "cnn", "version": cnn.version,
                                                         "why": "its own was poor"}


@pytest.mark.parametrize("field,value", [("manifest_sha256", "0" * 64), ("n_validation", 3)])
def test_a_lender_validated_on_other_data_is_refused(field, value):
    cnn = registry.get("cnn")
    meta = _borrower(cnn.metadata)
    meta["dataset"] = {**meta["dataset"], field: value}
    with pytest.raises(SystemExit, match=field):
        borrow_guard(meta, cnn)


def test_a_model_keeping_its_own_guard_cannot_change_its_tta_here():
    cnn = registry.get("cnn")
    other = "none" if cnn.metadata.get("tta", "hflip") == "hflip" else "hflip"
    with pytest.raises(SystemExit, match="keeps its own guard"):
        recalibrate_main(["--model", "cnn", "--tta", other, "--dry-run"])


def test_every_shipped_borrower_names_the_lender_version_that_ships():
    for name in registry.available_models():
        meta = registry.get(name).metadata
        if meta.get("guard_model"):
            lender = registry.get(meta["guard_model"])
            assert meta["guard_evaluation"]["borrowed_from"]["version"] == lender.version, name
            assert meta["guard_evaluation"]["auroc"] == lender.metadata["guard_evaluation"]["auroc"], name


def test_asking_for_nothing_is_an_error_not_a_silent_rewrite():
    with pytest.raises(SystemExit, match="nothing to do"):
        recalibrate_main(["--model", "cnn", "--dry-run"])
