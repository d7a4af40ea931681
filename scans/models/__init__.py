"""The BrainAI domain. Rows are written only through scans.services."""
from scans.models.audit import AuditEvent
from scans.models.choices import (
    REPORT_TRANSITIONS,
    SCAN_TRANSITIONS,
    STUDY_STATUS_OF_REPORT,
    TUMOUR_LABELS,
    AuditAction,
    Priority,
    Verdict,
    Label,
    ReportStatus,
    ScanStatus,
    StudyStatus,
    Via,
)
from scans.models.clinical import (
    PROGRESS_ANNOTATIONS, STUDY_PROGRESS_ANNOTATIONS, Patient, Progress, Scan, Series, Study, Upload,
)
from scans.models.delivery import DELIVERY_TRANSITIONS, Delivery, DeliveryStatus, Destination, DestinationKind
from scans.models.inbox import DicomInstance
from scans.models.notifications import (
    NOTIFICATION_TRANSITIONS, Notification, NotificationStatus, NotificationTarget, NotifyEvent, TargetKind,
)
from scans.models.operations import EventKind, PipelineEvent
from scans.models.results import Analysis, Report

__all__ = [
    "DELIVERY_TRANSITIONS", "Delivery", "DeliveryStatus", "Destination", "DestinationKind",
    "Analysis", "AuditAction", "AuditEvent", "DicomInstance", "Label", "PROGRESS_ANNOTATIONS", "Patient", "Progress",
    "REPORT_TRANSITIONS", "Report", "ReportStatus", "SCAN_TRANSITIONS", "STUDY_STATUS_OF_REPORT", "STUDY_PROGRESS_ANNOTATIONS", "Scan", "ScanStatus", "Series", "Study", "StudyStatus", "TUMOUR_LABELS",
    "Upload", "Via",
    "Priority", "Verdict", "EventKind", "PipelineEvent",
    "NOTIFICATION_TRANSITIONS", "Notification", "NotificationStatus", "NotificationTarget", "NotifyEvent", "TargetKind",
]
