from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from scans.api import operator, views

app_name = "api"

router = DefaultRouter()
router.register("studies", views.StudyViewSet, basename="study")
router.register("reports", views.ReportViewSet, basename="report")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="token"),
    path("uploads/", views.UploadView.as_view(), name="upload"),
    path("uploads/<int:pk>/", views.UploadDetailView.as_view(), name="upload-detail"),
    path("operator/queue/", operator.OperatorQueueView.as_view(), name="operator-queue"),
    path("analytics/", views.AnalyticsView.as_view(), name="analytics"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]
