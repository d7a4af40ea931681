"""Request middleware: login required (API views excepted), the request-size limit, the
API notice header, and the Content-Security-Policy."""
from django.contrib.auth.middleware import LoginRequiredMiddleware as _DjangoLoginRequired
from rest_framework.views import APIView


class LoginRequiredMiddleware(_DjangoLoginRequired):
    """Django's middleware, letting DRF views through to their own authentication.

    Token authentication happens inside the DRF view, after middleware, so the
    middleware would otherwise redirect every token-authenticated API call to the login
    page. DRF's default permission (``scans.api.permissions.IsClinicUser``) then
    refuses anonymous requests with 401/403.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "cls", None)
        if isinstance(view_class, type) and issubclass(view_class, APIView):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class RequestTooLarge:
    """413 for a request whose declared body passes ``BRAINAI_REQUEST_MAX_MB``, before any
    of it is read.

    WSGI bodies reach Django through ``LimitedStream``, which never reads past
    CONTENT_LENGTH (a body without one reads as empty), so the declared length bounds what
    the upload parser can stream: checking it here is checking the bytes. First in
    MIDDLEWARE, so nothing before it touches the body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.conf import settings
        from django.http import JsonResponse

        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = -1
        limit = settings.BRAINAI_REQUEST_MAX_MB * 1024 * 1024
        if declared < 0 or declared > limit:
            response = JsonResponse({"detail": f"request body over {settings.BRAINAI_REQUEST_MAX_MB} MB; "
                                               "split the upload"}, status=413)
            response["Connection"] = "close"  # the unread body is not drained
            return response
        return self.get_response(request)


class ApiNotice:
    """Every API response, errors included, says the service is not for diagnostic use
    (``X-BrainAI-Notice``); the report detail keeps its ``notice`` field too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from scans.api.serializers import NOTICE

        response = self.get_response(request)
        if request.path.startswith("/api/"):
            response["X-BrainAI-Notice"] = NOTICE
        return response


# Scripts and styles from this site only; inline style attributes are used by the portal's
# bars and charts. No frames, plugins or foreign form targets.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
                           "frame-ancestors 'none'")
# Swagger UI (drf-spectacular) runs an inline bootstrap script; it gets no policy.
_NO_CSP = ("/api/v1/docs/",)


class ContentSecurityPolicy:
    """The CSP header on every HTML page but the API docs (X-Frame-Options and
    Referrer-Policy come from Django's own middleware and settings)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(_NO_CSP):
            response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response
