"""Report state changes: explanation, finalisation, review, sign-off, amendment."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from scans import snapshot
from scans.models import AuditAction, EventKind, Label, NotifyEvent, Report, ReportStatus, Verdict, Via
from scans.permissions import EXPLAIN, REVIEW
from scans.services import events, state
from scans.services.audit import audit
from scans.services.delivery import queue_deliveries
from scans.services.errors import InvalidState, InvalidVerdict
from scans.services.notifications import notify
from scans.services.queue import EXPLAIN_REPORT, FINALIZE_REPORT, enqueue

# The labels a radiologist may give as the correct one: the model's four classes.
VERDICT_LABELS = (Label.GLIOMA, Label.MENINGIOMA, Label.NOTUMOR, Label.PITUITARY)


def check_verdict(verdict: str | None, verdict_label: str | None = "", *,
                  ai_label: str | None = None) -> tuple[str, str]:
    """The structured verdict, checked: ``(verdict, verdict_label)`` as stored.

    ``verdict`` is "" (not recorded), agree, disagree or not_assessable; ``verdict_label``,
    one of the four classes, is required with disagree and refused otherwise, and must
    differ from the AI label ``ai_label`` when that is given.

    Raises:
        InvalidVerdict: with ``field`` naming the value at fault and a message for a person.
    """
    verdict, label = (verdict or "").strip(), (verdict_label or "").strip()
    if verdict not in ("", *Verdict.values):
        raise InvalidVerdict("verdict", f"unknown verdict {verdict[:30]!r}; one of {', '.join(Verdict.values)} "
                                        "or empty (not recorded)")
    if verdict == Verdict.DISAGREE:
        if not label:
            raise InvalidVerdict("verdict_label", "give the correct label when you disagree with the AI")
        if label not in VERDICT_LABELS:
            raise InvalidVerdict("verdict_label", f"unknown label {label[:30]!r}; one of {', '.join(VERDICT_LABELS)}")
        if ai_label and label == ai_label:
            raise InvalidVerdict("verdict_label", f"the AI already says {label}; choose 'agrees' or another label")
    elif label:
        raise InvalidVerdict("verdict_label", "a correct label is given only when you disagree with the AI")
    return verdict, label


def _set_verdict(report: Report, verdict: str | None, verdict_label: str | None) -> list[str]:
    """Put a checked verdict on ``report`` (locked, editable); None leaves the stored one.

    Returns the fields that changed, for ``save(update_fields=...)``.
    """
    if verdict is None:
        return []
    verdict, label = check_verdict(verdict, verdict_label, ai_label=report.label)
    changed = [name for name, value in (("verdict", verdict), ("verdict_label", label))
               if getattr(report, name) != value]
    report.verdict, report.verdict_label = verdict, label
    return changed


_EXPLANATION_FIELDS = ("text", "provider", "model", "prompt_version", "latency_ms", "fallback_reason", "attempts")


def _seconds_since(moment) -> float | None:
    return (timezone.now() - moment).total_seconds() if moment else None


def _locked(report: Report) -> Report:
    return Report.objects.select_for_update().select_related("study").get(pk=report.pk)


def explanation_due(report_id: int) -> Report | None:
    """The report if it still wants an explanation (so a repeated task does nothing)."""
    report = Report.objects.select_related("study", "key_scan").filter(pk=report_id).first()
    if report is None or not report.explanation_pending or report.status == ReportStatus.FAILED:
        return None
    return report


def count_explanation_attempt(report_id: int) -> int:
    """Count one more try of the llm task for this report; returns the new count."""
    with transaction.atomic():
        report = Report.objects.select_for_update().get(pk=report_id)
        report.explanation_task_attempts += 1
        report.save(update_fields=["explanation_task_attempts"])
        return report.explanation_task_attempts


def record_explanation(report_id: int, explanation, *, requested_at=None) -> Report | None:
    """Store an llm.Explanation and queue the report's finalisation.

    ``requested_at`` is the request this explanation answers: if a newer regeneration
    was asked for meanwhile, it is stored anyway and that newer task overwrites it.
    """
    with transaction.atomic():
        report = Report.objects.select_for_update().filter(pk=report_id).first()
        if report is None or report.is_signed or report.status == ReportStatus.FAILED:
            return None
        values = {name: getattr(explanation, name, None) for name in _EXPLANATION_FIELDS}
        report.explanation_text = values["text"] or ""
        report.explanation_provider = (values["provider"] or "")[:40]
        report.explanation_model = (values["model"] or "")[:100]
        report.explanation_prompt_version = str(values["prompt_version"] or "")[:40]
        report.explanation_latency_ms = int(values["latency_ms"]) if values["latency_ms"] is not None else None
        report.explanation_fallback_reason = values["fallback_reason"] or ""
        report.explanation_llm_attempts = int(values["attempts"] or 0)
        now = timezone.now()
        latest = report.explanation_requested_at
        if latest and requested_at and latest > requested_at:
            report.explanation_generated_at = requested_at  # a newer request stays pending
        else:
            report.explanation_generated_at = max(now, latest or now)
        report.save()
        if report.status == ReportStatus.PROCESSING:
            enqueue(FINALIZE_REPORT, report.pk)
        events.record(report.study_id, EventKind.EXPLAINED, report=report.pk, provider=report.explanation_provider,
                      fallback=bool(report.explanation_fallback_reason),
                      seconds=(report.explanation_latency_ms or 0) / 1000)
        return report


def finalize_report(report_id: int) -> Report | None:
    """processing -> awaiting_review once the finding and the explanation are in."""
    with transaction.atomic():
        report = Report.objects.select_for_update().select_related("study").filter(pk=report_id).first()
        if report is None or report.status != ReportStatus.PROCESSING or not report.label:
            return None
        if report.explanation_generated_at is None:
            return None
        state.move_report(report, ReportStatus.AWAITING_REVIEW)
        queue_deliveries(report)  # the unverified SR, to destinations that want it
        notify(report.study, NotifyEvent.AWAITING_REVIEW, report)  # webhooks and e-mails
        events.record(report.study_id, EventKind.FINALISED, report=report.pk, status=report.status,
                      seconds=_seconds_since(report.study.created_at))
        return report


def update_review(report: Report, user, findings: str, impression: str, *, via: Via = Via.PORTAL,
                  ip_address: str | None = None, verdict: str | None = None,
                  verdict_label: str | None = None) -> Report:
    """Save the radiologist's findings and impression (before sign-off).

    ``verdict``/``verdict_label`` (check_verdict) are kept as a draft too; None leaves the
    stored verdict as it is.
    """
    REVIEW.require(user, "edit a report")
    with transaction.atomic():
        report = _locked(report)
        _save_review(report, user, findings, impression, via, ip_address,
                     verdict_fields=_set_verdict(report, verdict, verdict_label))
    return report


def _save_review(report: Report, user, findings: str, impression: str, via: Via, ip_address: str | None,
                 verdict_fields=()) -> None:
    """update_review on a report the caller has locked (``verdict_fields``: already set on it)."""
    if not report.is_editable:
        raise InvalidState(f"report {report.pk} is {report.get_status_display().lower()}; it cannot be edited")
    report.findings = (findings or "").strip()
    report.impression = (impression or "").strip()
    report.reviewed_by = user
    report.reviewed_at = timezone.now()
    report.save(update_fields=["findings", "impression", "reviewed_by", "reviewed_at", "updated_at", *verdict_fields])
    audit(AuditAction.UPDATE_REVIEW, user, via=via, report=report, ip_address=ip_address)


def sign_report(report: Report, user, *, findings: str | None = None, impression: str | None = None,
                verdict: str | None = None, verdict_label: str | None = None,
                via: Via = Via.PORTAL, ip_address: str | None = None) -> Report:
    """Save the text, then sign. From now on the report is only amended, never edited.

    ``findings``/``impression`` are the text as the radiologist last saw it (None: the
    stored one); text that differs from what is stored is saved first, as update_review
    would, in the same transaction. ``verdict``/``verdict_label`` are the structured
    verdict on the AI finding (check_verdict; None: the stored draft, blank when none):
    optional, "" is "not recorded". The signed version stores its snapshot
    (scans.snapshot, the verdict in its review part) and the snapshot's sha256.

    Raises:
        InvalidVerdict: the verdict does not pass check_verdict (nothing is saved).
    """
    with transaction.atomic():
        report = _locked(report)
        REVIEW.require(user, "sign a report")
        if not report.is_editable:
            raise InvalidState(f"report {report.pk} is {report.get_status_display().lower()}; only a report awaiting review can be signed")
        verdict_fields = _set_verdict(report, verdict, verdict_label)
        check_verdict(report.verdict, report.verdict_label, ai_label=report.label)  # a stored draft too
        text = (report.findings if findings is None else findings.strip(),
                report.impression if impression is None else impression.strip())
        if text != (report.findings, report.impression):
            _save_review(report, user, *text, via, ip_address)
        now = timezone.now()
        report.signed_by, report.signed_at = user, now
        if report.reviewed_by_id is None:
            report.reviewed_by, report.reviewed_at = user, now
        report.snapshot = snapshot.build(report, status=ReportStatus.SIGNED)
        report.snapshot_sha256 = snapshot.digest(report.snapshot)
        state.move_report(report, ReportStatus.SIGNED, also=["signed_by", "signed_at", "reviewed_by", "reviewed_at",
                                                             "snapshot", "snapshot_sha256", *verdict_fields])
        audit(AuditAction.SIGN_REPORT, user, via=via, report=report, ip_address=ip_address, version=report.version,
              sha256=report.snapshot_sha256, verdict=report.verdict or None)
        queue_deliveries(report)  # the verified SR
        notify(report.study, NotifyEvent.SIGNED, report)
    return report


def amend_report(report: Report, user, findings: str, impression: str, *, via: Via = Via.PORTAL,
                 ip_address: str | None = None) -> Report:
    """Create a signed amendment: a new current version; the old one is kept unchanged.

    Its snapshot keeps the signed version's AI part (what was signed, not what the rows
    hold now) with the amendment's review.
    """
    REVIEW.require(user, "amend a report")
    with transaction.atomic():
        old = _locked(report)
        if not old.is_amendable:
            raise InvalidState(f"report {old.pk} is not the current signed version; only that can be amended")
        Report.objects.filter(pk=old.pk).update(is_current=False)
        now = timezone.now()
        new = Report.objects.get(pk=old.pk)
        new.pk = None
        new.id = None
        new._state.adding = True
        new.version = old.version + 1
        new.is_current = True
        new.previous = old
        new.findings = (findings or "").strip()
        new.impression = (impression or "").strip()
        new.reviewed_by, new.reviewed_at = user, now
        new.signed_by, new.signed_at = user, now
        new.created_at = now
        if old.snapshot:
            new.snapshot = snapshot.amended(old.snapshot, new, status=ReportStatus.AMENDED)
        else:  # signed before snapshots existed and not backfilled
            new.snapshot = snapshot.build(new, status=ReportStatus.AMENDED)
        new.snapshot_sha256 = snapshot.digest(new.snapshot)
        state.move_report(new, ReportStatus.AMENDED)  # inserted: a new version
        audit(AuditAction.AMEND_REPORT, user, via=via, report=new, ip_address=ip_address, previous=old.pk,
              version=new.version, sha256=new.snapshot_sha256)
        queue_deliveries(new)  # a new verified SR that replaces the last one sent
        notify(new.study, NotifyEvent.AMENDED, new)
    return new


def regenerate_explanation(report: Report, user, *, via: Via = Via.PORTAL) -> Report:
    """Ask the llm worker for a new explanation; the old text stays until it arrives."""
    EXPLAIN.require(user, "ask for a new explanation")
    with transaction.atomic():
        report = _locked(report)
        if report.is_signed or not report.is_current:
            raise InvalidState(f"report {report.pk} is signed; its explanation is part of the record")
        if not report.label:
            raise InvalidState(f"report {report.pk} has no AI finding yet; nothing to explain")
        report.explanation_requested_at = timezone.now()
        report.explanation_task_attempts = 0
        report.save(update_fields=["explanation_requested_at", "explanation_task_attempts", "updated_at"])
        audit(AuditAction.REGENERATE_EXPLANATION, user, via=via, report=report)
        enqueue(EXPLAIN_REPORT, report.pk)
    return report
