"""Portal pages (the root urlconf includes these at "")."""
from django.urls import path

from scans.views import print as print_views
from scans.views import analytics, operator, report, review, study, upload, worklist

app_name = "scans"

urlpatterns = [
    path("", worklist.worklist, name="worklist"),
    path("upload/", upload.upload, name="upload"),
    path("studies/<int:pk>/", study.study, name="study"),
    path("studies/<int:pk>/progress/", study.study_progress, name="study-progress"),
    path("studies/<int:pk>/rerun/", study.rerun, name="study-rerun"),
    path("reports/<int:pk>/", report.report, name="report"),
    path("reports/<int:pk>/review/", review.save_review, name="report-review"),
    path("reports/<int:pk>/sign/", review.sign, name="report-sign"),
    path("reports/<int:pk>/amend/", review.amend, name="report-amend"),
    path("reports/<int:pk>/explanation/", review.regenerate_explanation, name="report-explanation"),
    path("reports/<int:pk>/detail/", review.request_detail, name="report-detail"),
    path("reports/<int:pk>/print/", print_views.report_print, name="report-print"),
    path("analytics/", analytics.analytics, name="analytics"),
    path("operator/", operator.operator_queue, name="operator"),
    path("operator/studies/<int:pk>/events/", operator.study_events, name="operator-events"),
    path("operator/studies/<int:pk>/retry/", operator.retry_study, name="operator-retry"),
    path("operator/studies/<int:pk>/cancel/", operator.cancel_study, name="operator-cancel"),
    path("operator/studies/<int:pk>/priority/", operator.change_priority, name="operator-priority"),
    path("operator/scans/<int:pk>/retry/", operator.retry_scan, name="operator-retry-scan"),
]
