"""The sample study a new user uploads: one slice per class, one fictional patient."""
import importlib.util
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ml.data import default_data_dir
from tests.conftest import token_client

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not default_data_dir().is_dir(), reason="dataset not found")


def _builder():
    spec = importlib.util.spec_from_file_location("make_sample_study", ROOT / "scripts" / "make_sample_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def test_the_sample_study_uploads_as_one_study_of_four_slices(db, staff_user, tmp_path):
    path = _builder()(default_data_dir(), tmp_path / "sample.zip")
    upload = SimpleUploadedFile("sample-study.zip", path.read_bytes(), content_type="application/zip")
    response = token_client(staff_user).post("/api/v1/uploads/", {"files": [upload]}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 4 and body["rejected"] == []
    assert len(body["studies"]) == 1
