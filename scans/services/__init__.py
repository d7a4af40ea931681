"""Every state change of the BrainAI domain, one function per verb.

Views, API views, admin actions, tasks and management commands all call these.
"""
from scans.services.analysis import (
    ScanResult, claim_batch, complete_analysis, mark_failed, record_analyses, record_scan_error,
    rerun_analysis,
)
from scans.services.audit import audit, record_read, record_view
from scans.services.analytics import reviewer_analytics, view_analytics
from scans.services.delivery import queue_deliveries, retry_delay, retry_delivery, send_delivery
from scans.services.detail import pending_detail, record_detail, request_detail
from scans.services.notifications import notify, resend_notification, send_notification
from scans.services.housekeeping import requeue_stalled, sweep
from scans.services.errors import InvalidState, InvalidVerdict, PermissionDenied, ServiceError, StorageUnavailable
from scans.services.reports import (
    VERDICT_LABELS, amend_report, check_verdict, count_explanation_attempt, explanation_due, finalize_report,
    record_explanation, regenerate_explanation, sign_report, update_review,
)
from scans.services.operations import cancel_study, retry_scan, retry_study
from scans.services.priority import pause_point, priority_for_upload, queue_analysis, set_priority
from scans.services.queue import LANES, lane_lengths
from scans.services.model_choice import UnknownModel, available_models, check_model_name, default_model
from scans.services.uploads import UploadResult, register_upload
from scans.services.finding import record_skipped

__all__ = [
    "InvalidState", "InvalidVerdict", "reviewer_analytics", "view_analytics", "VERDICT_LABELS", "check_verdict", "LANES", "PermissionDenied", "ScanResult", "ServiceError", "StorageUnavailable", "UnknownModel",
    "UploadResult",
    "amend_report", "audit", "available_models", "check_model_name", "claim_batch", "complete_analysis",
    "count_explanation_attempt", "default_model", "explanation_due", "finalize_report", "mark_failed",
    "lane_lengths", "pause_point", "pending_detail", "priority_for_upload", "queue_analysis", "queue_deliveries", "record_detail", "request_detail", "retry_delay", "retry_delivery",
    "send_delivery", "set_priority",
    "record_analyses", "record_skipped", "record_explanation", "record_read", "record_scan_error", "record_view", "regenerate_explanation",
    "register_upload", "requeue_stalled", "rerun_analysis", "sign_report", "sweep", "update_review",
    "notify", "resend_notification", "send_notification",
    "cancel_study", "retry_scan", "retry_study",
]
