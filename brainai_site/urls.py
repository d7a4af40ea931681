from django.contrib import admin
from django.urls import include, path, re_path

from brainai_site.health import healthz
from brainai_site.media import serve_media
from brainai_site.metrics import metrics
from scans.api.dicomweb import StudiesView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("scans.api.urls")),
    path("dicomweb/studies", StudiesView.as_view(), name="dicomweb-studies"),  # STOW-RS, QIDO-RS
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),  # Prometheus; address allow-list or bearer token
    re_path(r"^media/(?P<path>.+)$", serve_media, name="media"),
    path("", include("scans.urls")),
]

admin.site.site_header = "BrainAI administration (decision support, not for diagnostic use)"
admin.site.site_title = "BrainAI admin"
