"""Status and label values shared by the models, the API and the workers."""
from django.db import models


class Label(models.TextChoices):
    GLIOMA = "glioma", "Glioma"
    MENINGIOMA = "meningioma", "Meningioma"
    NOTUMOR = "notumor", "No tumour"
    PITUITARY = "pituitary", "Pituitary tumour"
    NOT_BRAIN_MRI = "not_brain_mri", "Not a brain MRI"  # the input guard rejected the image
    # A study's evidence does not agree, or no series could be analysed (ml.study.finding).
    INDETERMINATE = "indeterminate", "Indeterminate: review"


TUMOUR_LABELS = (Label.GLIOMA, Label.MENINGIOMA, Label.PITUITARY)


class Priority(models.TextChoices):
    """A study's lane on the gpu queue: urgent before routine before research."""
    URGENT = "urgent", "Urgent"
    ROUTINE = "routine", "Routine"  # the default
    RESEARCH = "research", "Research"  # may be held to BRAINAI_RESEARCH_HOURS


class Verdict(models.TextChoices):
    """The radiologist's structured verdict on the AI finding, recorded at sign-off."""
    AGREE = "agree", "Agrees with the AI"
    DISAGREE = "disagree", "Disagrees (correct label given)"
    NOT_ASSESSABLE = "not_assessable", "Image not assessable"


class ScanStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # stored, waiting for (or inside) the gpu worker
    ANALYZED = "analyzed", "Analysed"  # an Analysis row holds the model's result
    FAILED = "failed", "Failed"  # could not be analysed; Scan.error says why
    SKIPPED = "skipped", "Not analysed"  # series or slice rules kept it from the model; skip_reason says why


class StudyStatus(models.TextChoices):
    ANALYZING = "analyzing", "Analysing"  # scans queued for or inside the gpu worker
    EXPLAINING = "explaining", "Explaining"  # analysis done; the LLM explanation is being written
    AWAITING_REVIEW = "awaiting_review", "Awaiting review"  # report ready for a radiologist
    SIGNED = "signed", "Signed"  # the current report is signed (or a signed amendment)
    FAILED = "failed", "Failed"  # no scan could be analysed; the report gives the reason


class ReportStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"  # AI finding or explanation not ready yet
    AWAITING_REVIEW = "awaiting_review", "Awaiting review"  # a radiologist may edit and sign
    SIGNED = "signed", "Signed"  # signed; never edited again, only amended
    AMENDED = "amended", "Amended"  # a signed amendment of an earlier signed version
    FAILED = "failed", "Failed"  # analysis could not complete; failure_reason says why


# The state machine, one table per stored status: which status each status may move to.
# scans.services.state holds the only writers and refuses a move that is not listed here.
SCAN_TRANSITIONS: dict[str, frozenset[str]] = {
    # pending -> pending: a re-run resets the attempts of a scan not yet analysed.
    # pending -> skipped: its series is not analysed (at upload) or the slice holds no head (worker).
    ScanStatus.PENDING: frozenset({ScanStatus.PENDING, ScanStatus.ANALYZED, ScanStatus.FAILED, ScanStatus.SKIPPED}),
    ScanStatus.ANALYZED: frozenset({ScanStatus.PENDING, ScanStatus.FAILED}),  # re-run; an admin gives up on it
    ScanStatus.FAILED: frozenset({ScanStatus.PENDING, ScanStatus.FAILED}),  # re-run; failed again, new reason
    ScanStatus.SKIPPED: frozenset({ScanStatus.PENDING}),  # re-run (slice selection runs again)
}
REPORT_TRANSITIONS: dict[str, frozenset[str]] = {
    # -> processing: reopened (new images or a re-run), the AI result cleared.
    ReportStatus.PROCESSING: frozenset({ReportStatus.PROCESSING, ReportStatus.AWAITING_REVIEW, ReportStatus.FAILED}),
    ReportStatus.AWAITING_REVIEW: frozenset({ReportStatus.PROCESSING, ReportStatus.SIGNED, ReportStatus.FAILED}),
    ReportStatus.FAILED: frozenset({ReportStatus.PROCESSING, ReportStatus.FAILED}),
    # An amendment is a new version that starts as a copy of the signed one.
    ReportStatus.SIGNED: frozenset({ReportStatus.AMENDED}),
    ReportStatus.AMENDED: frozenset({ReportStatus.AMENDED}),
}
# Study.status is not moved but derived (Study.derived_status): from the current report's
# status, and, while that is processing, from whether its AI finding is set yet.
STUDY_STATUS_OF_REPORT: dict[str, str] = {
    ReportStatus.AWAITING_REVIEW: StudyStatus.AWAITING_REVIEW,
    ReportStatus.SIGNED: StudyStatus.SIGNED,
    ReportStatus.AMENDED: StudyStatus.SIGNED,
    ReportStatus.FAILED: StudyStatus.FAILED,
}


class AuditAction(models.TextChoices):
    UPLOAD = "upload", "Upload"  # files received (counts only, no names)
    VIEW_REPORT = "view_report", "Viewed report"  # a person opened a report (portal, API or admin)
    VIEW_STUDY = "view_study", "Viewed study"  # a study with its patient and slices (API or admin)
    LIST_REPORTS = "list_reports", "Listed reports"  # a page of the API report list (ids only)
    LIST_STUDIES = "list_studies", "Listed studies"  # a page of the API study list (ids only)
    VIEW_MEDIA = "view_media", "Fetched image"  # an original, preview or map was served
    UPDATE_REVIEW = "update_review", "Edited review"  # findings/impression saved
    SIGN_REPORT = "sign_report", "Signed report"
    AMEND_REPORT = "amend_report", "Amended report"  # a new signed version was created
    REGENERATE_EXPLANATION = "regenerate_explanation", "Requested new explanation"
    RERUN_ANALYSIS = "rerun_analysis", "Re-ran analysis"
    MARK_FAILED = "mark_failed", "Marked failed"
    ANALYSIS_FAILED = "analysis_failed", "Analysis failed"  # the pipeline gave up
    RETRY_DELIVERY = "retry_delivery", "Retried sending results"  # an admin sent a delivery again
    RETRY_STUDY = "retry_study", "Retried study"  # an operator retried a failed scan or study
    CANCEL_STUDY = "cancel_study", "Cancelled study"  # an operator cancelled what was left to analyse
    CHANGE_PRIORITY = "change_priority", "Changed priority"
    RESEND_NOTIFICATION = "resend_notification", "Resent notification"
    VIEW_ANALYTICS = "view_analytics", "Viewed reviewer analytics"
    EXPORT_CORRECTIONS = "export_corrections", "Exported corrections"  # de-identified slices for training
    REQUEST_DETAIL = "request_detail", "Requested saliency detail"  # on-demand saliency + faithfulness
    VIEW_PATIENT = "view_patient", "Viewed patient"  # a patient's page (admin)
    LIST_PATIENTS = "list_patients", "Listed patients"  # a page of the patient list (admin; ids only)


class Via(models.TextChoices):
    PORTAL = "portal", "Portal"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    WORKER = "worker", "Worker"
    COMMAND = "command", "Command line"
    DICOM = "dicom", "DICOM (C-STORE)"  # the DICOM listener
    DICOMWEB = "dicomweb", "DICOMweb (STOW-RS)"
