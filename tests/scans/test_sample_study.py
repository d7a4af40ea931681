"""The sample study a new user uploads: one slice per class, one fictional patient."""
import importlib.util
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.builders import brain_class_folders, token_client

ROOT = Path(__file__).resolve().parents[2]


def _builder():
    spec = importlib.util.spec_from_file_location("make_sample_study", ROOT / "scripts" / "make_sample_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def test_the_sample_study_uploads_as_one_study_of_four_slices(db, staff_user, tmp_path):
    path = _builder()(brain_class_folders(tmp_path / "data"), tmp_path / "sample.zip")
    upload = SimpleUploadedFile("sample-study.zip", path.read_bytes(), content_type="application/zip")
    response = token_client(staff_user).post("/api/v1/uploads/", {"files": [upload]}, format="multipart")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 4 and body["rejected"] == []
    assert len(body["studies"]) == 1
