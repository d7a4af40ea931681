"""Media (scans, previews, heatmaps) for signed-in clinic users only.

There is no public MEDIA_URL serving: this view checks the session (portal) or an API
token (``Authorization: Token ...``, for other systems following the API's heatmap URLs)
and streams the file from the storage, with a MIME type and ``Cache-Control: private``.
Every file served is an audit event (``view_media``, with the file's name).
"""
import mimetypes
import posixpath

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from scans import roles, services
from scans.models import AuditAction, Via
from scans.views.common import client_ip


def _user(request):
    if request.user.is_authenticated:
        return request.user
    found = TokenAuthentication().authenticate(request)  # None without a Token header
    return found[0] if found else None


@login_not_required  # checked below: session or API token
def serve_media(request, path: str):
    """Stream one media file to a clinic user; anyone else is refused before the method is looked at."""
    try:
        user = _user(request)
    except AuthenticationFailed:
        return HttpResponse("invalid token", status=401, content_type="text/plain")
    if user is None:
        return redirect_to_login(request.get_full_path())
    if not roles.is_clinic_user(user):
        raise PermissionDenied
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    name = posixpath.normpath(path).lstrip("/")
    if name.startswith("..") or name != path.lstrip("/"):
        raise Http404
    try:
        if not default_storage.exists(name):
            raise Http404
        handle = default_storage.open(name, "rb")
    except (SuspiciousFileOperation, OSError):
        raise Http404 from None
    # Names are content hashes and ids (scans.services.uploads), never PHI.
    services.record_read(AuditAction.VIEW_MEDIA, user, via=Via.PORTAL if request.user.is_authenticated else Via.API,
                         ip_address=client_ip(request), path=name)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    if not content_type.startswith("image/"):
        response["Content-Disposition"] = "attachment"
    return response
