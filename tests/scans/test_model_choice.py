"""An upload may choose the classifier; the study keeps the choice; unknown names are refused."""
from __future__ import annotations

import pytest
from django.urls import reverse

from ml.model import registry
from scans import services
from scans.models import Study, Upload
from tests import builders as b

pytestmark = pytest.mark.django_db


def _upload(user, files: dict[str, bytes], model=None, **fields):
    return services.register_upload(user, [b.upload(n, d) for n, d in files.items()], fields, model=model)


def test_the_shipped_models_are_offered_most_accurate_first():
    assert services.available_models() == registry.available_models()
    assert {"xception", "cnn"} <= set(services.available_models())


def test_the_requested_model_is_stored_on_the_new_study(staff_user):
    result = _upload(staff_user, {"a.png": b.png_bytes(1)}, model="cnn", patient_id="M-1")

    assert Study.objects.get(pk=result.studies[0].pk).requested_model == "cnn"


def test_without_a_choice_the_study_is_left_to_the_configured_default(staff_user):
    result = _upload(staff_user, {"a.png": b.png_bytes(2)}, model="", patient_id="M-2")

    assert Study.objects.get(pk=result.studies[0].pk).requested_model == ""


def test_an_unknown_model_is_refused_before_anything_is_stored(staff_user):
    with pytest.raises(services.UnknownModel) as refused:
        _upload(staff_user, {"a.png": b.png_bytes(3)}, model="resnet-9000", patient_id="M-3")

    assert "resnet-9000" in str(refused.value)
    assert all(name in str(refused.value) for name in services.available_models())
    assert not Upload.objects.exists() and not Study.objects.exists()


def test_a_study_from_a_later_upload_keeps_its_own_choice(staff_user):
    first = _upload(staff_user, {"a.png": b.png_bytes(4)}, model="cnn", patient_id="M-4", study_description="T1")
    later = _upload(staff_user, {"b.png": b.png_bytes(5)}, patient_id="M-4", study_description="T2")

    assert Study.objects.get(pk=first.studies[0].pk).requested_model == "cnn"
    assert Study.objects.get(pk=later.studies[0].pk).requested_model == ""


def test_images_added_to_an_existing_study_keep_that_studys_model(staff_user):
    first = _upload(staff_user, {"s.dcm": b.dicom_bytes(sop_uid="1.9.1")}, model="cnn")
    _upload(staff_user, {"s2.dcm": b.dicom_bytes(sop_uid="1.9.2", seed=5)}, model="xception")

    study = Study.objects.get(pk=first.studies[0].pk)
    assert study.scans.count() == 2 and study.requested_model == "cnn"  # one report, one classifier


def test_the_api_accepts_a_model_and_the_study_shows_it(staff_api):
    response = staff_api.post("/api/v1/uploads/", {"files": [b.upload("a.png", b.png_bytes(6))],
                                                   "patient_id": "API-M1", "model": "cnn"}, format="multipart")

    assert response.status_code == 202, response.content
    study_id = response.json()["studies"][0]["id"]
    assert staff_api.get(f"/api/v1/studies/{study_id}/").json()["requested_model"] == "cnn"


def test_the_api_refuses_an_unknown_model_with_a_400_that_lists_the_available_ones(staff_api):
    response = staff_api.post("/api/v1/uploads/", {"files": [b.upload("a.png", b.png_bytes(7))],
                                                   "patient_id": "API-M2", "model": "nope"}, format="multipart")

    assert response.status_code == 400
    message = " ".join(response.json()["model"])
    assert "nope" in message and all(name in message for name in services.available_models())
    assert not Study.objects.exists()


def test_the_upload_page_offers_the_models_with_the_default_marked(staff_client, settings):
    settings.BRAINAI_MODEL = None
    default = registry.default_model_name()

    html = staff_client.get(reverse("scans:upload")).content.decode()

    assert '<label for="id_model">AI model</label>' in html and '<select name="model"' in html
    assert f'<option value="" selected>{default} (default)</option>' in html
    for name in services.available_models():
        if name != default:
            assert f'<option value="{name}">{name}</option>' in html
