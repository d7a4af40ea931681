"""Login required everywhere, except API views (DRF authenticates those itself)."""
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
