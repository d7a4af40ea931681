"""The upload page. The browser posts straight to the API (POST /api/v1/uploads/)."""
from __future__ import annotations

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from scans.forms import UploadFieldsForm, UploadModelForm
from scans.views.common import clinic_user_required

UPLOAD_URL_NAME = "api:upload"  # POST /api/v1/uploads/, the contract in README.md "REST API (v1)"
_ID = 987654321  # stands for a study id in the link pattern the script fills in


@clinic_user_required
@require_GET
@ensure_csrf_cookie
def upload(request):
    study_url = reverse("scans:study", args=[_ID]).replace(str(_ID), "__id__")
    return render(request, "scans/upload.html", {
        "form": UploadFieldsForm(), "model_form": UploadModelForm(), "api_url": reverse(UPLOAD_URL_NAME), "study_url_template": study_url,
    })
