"""Media (scans, previews, heatmaps) for signed-in clinic users only.

There is no public MEDIA_URL serving: this view checks the session (portal) or an API
token (``Authorization: Token ...``, for other systems following the API's heatmap URLs)
and streams the file from the storage, with a MIME type and ``Cache-Control: private``.
"""
import mimetypes
import posixpath

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_GET
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from scans import roles


def _user(request):
    if request.user.is_authenticated:
        return request.user
    found = TokenAuthentication().authenticate(request)  # None without a Token header
    return found[0] if found else None


@login_not_required  # checked below: session or API token
@require_GET
def serve_media(request, path: str):
    try:
        user = _user(request)
    except AuthenticationFailed:
        return HttpResponse("invalid token", status=401, content_type="text/plain")
    if user is None:
        return redirect_to_login(request.get_full_path())
    if not roles.is_clinic_user(user):
        raise PermissionDenied
    name = posixpath.normpath(path).lstrip("/")
    if name.startswith("..") or name != path.lstrip("/"):
        raise Http404
    try:
        if not default_storage.exists(name):
            raise Http404
        handle = default_storage.open(name, "rb")
    except (SuspiciousFileOperation, OSError):
        raise Http404 from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    if not content_type.startswith("image/"):
        response["Content-Disposition"] = "attachment"
    return response
