"""Status and label values shared by the models, the API and the workers."""
from django.db import models


class Label(models.TextChoices):
    GLIOMA = "glioma", "Glioma"
    MENINGIOMA = "meningioma", "Meningioma"
    NOTUMOR = "notumor", "No tumour"
    PITUITARY = "pituitary", "Pituitary tumour"
    NOT_BRAIN_MRI = "not_brain_mri", "Not a brain MRI"  # the input guard rejected the image


TUMOUR_LABELS = (Label.GLIOMA, Label.MENINGIOMA, Label.PITUITARY)


class ScanStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # stored, waiting for (or inside) the gpu worker
    ANALYZED = "analyzed", "Analysed"  # an Analysis row holds the model's result
    FAILED = "failed", "Failed"  # could not be analysed; Scan.error says why


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


class AuditAction(models.TextChoices):
    UPLOAD = "upload", "Upload"  # files received (counts only, no names)
    VIEW_REPORT = "view_report", "Viewed report"  # a person opened a report (portal or API)
    UPDATE_REVIEW = "update_review", "Edited review"  # findings/impression saved
    SIGN_REPORT = "sign_report", "Signed report"
    AMEND_REPORT = "amend_report", "Amended report"  # a new signed version was created
    REGENERATE_EXPLANATION = "regenerate_explanation", "Requested new explanation"
    RERUN_ANALYSIS = "rerun_analysis", "Re-ran analysis"
    MARK_FAILED = "mark_failed", "Marked failed"
    ANALYSIS_FAILED = "analysis_failed", "Analysis failed"  # the pipeline gave up


class Via(models.TextChoices):
    PORTAL = "portal", "Portal"
    API = "api", "API"
    ADMIN = "admin", "Admin"
    WORKER = "worker", "Worker"
    COMMAND = "command", "Command line"
