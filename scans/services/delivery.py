"""Sending results back to the PACS: queue on a report's state change, send, retry.

    queue_deliveries(report)   called by finalize_report (unverified SR), sign_report and
                               amend_report (verified SR): one Delivery per destination
                               that wants it, sent on commit (queue ``outbound``)
    send_delivery(id)          one attempt: every file of the delivery in one association
                               or one POST; pending again (retry later) or sent or failed
    retry_delivery(d, user)    an admin sends a failed (or sent) delivery again; audited

Attempts are counted per delivery, i.e. per report version and destination for all its
files together: a destination that is down costs BRAINAI_DELIVERY_MAX_ATTEMPTS tries for
the study, never that many per file. Delivery.status has one writer, state.move_delivery.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydicom.uid import generate_uid

import dicom_out
from scans.models import AuditAction, Delivery, DeliveryStatus, Destination, DestinationKind, EventKind, Report, Via
from scans.models.delivery import MissingSecret
from scans.services import events, state
from scans.services.audit import audit
from scans.services.errors import InvalidState, PermissionDenied
from scans.services.queue import SEND_RESULTS, enqueue
from scans.services.results import build_files

logger = logging.getLogger(__name__)


def sr_series_uid(study_uid: str) -> str:
    """Every SR version of a study goes in one series of ours."""
    return generate_uid(entropy_srcs=[study_uid, "brainai-sr"])


def queue_deliveries(report: Report) -> list[Delivery]:
    """Create and (on commit) queue a Delivery of ``report``'s SR to every destination whose
    rule asks for it; call inside the transaction that moved the report.

    The new SR replaces the last one sent to that destination for the study (its
    Predecessor Documents Sequence names it), as an amendment must.
    """
    verified = report.is_signed
    out = []
    for destination in Destination.objects.filter(enabled=True):
        if not destination.wants(verified):
            continue
        last = (Delivery.objects.filter(report__study_id=report.study_id, destination=destination,
                                        status=DeliveryStatus.SENT).order_by("-sent_at", "-pk").first())
        delivery = Delivery.objects.create(
            report=report, destination=destination, verified=verified, with_overlays=destination.send_overlays,
            sr_series_uid=sr_series_uid(report.study.study_instance_uid), sr_sop_instance_uid=generate_uid(),
            replaces_sop_instance_uid=last.sr_sop_instance_uid if last else "",
            replaces_series_uid=last.sr_series_uid if last else "")
        enqueue(SEND_RESULTS, delivery.pk)
        out.append(delivery)
    return out


def _count_attempt(delivery_id: int) -> Delivery | None:
    """Count one attempt (committed before sending, so a worker that dies mid-send counts it);
    None when the delivery is not pending, or its next attempt is not due yet."""
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update().select_related("destination", "report")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return None
        if delivery.attempts and timezone.now() < delivery.updated_at + timedelta(seconds=retry_delay(delivery)):
            return None  # a second copy of the task (requeue, sweep) before the retry is due
        delivery.attempts += 1
        delivery.save(update_fields=["attempts", "updated_at"])
        return delivery


def _send(delivery: Delivery, files) -> int:
    d = delivery.destination
    if d.kind == DestinationKind.CSTORE:
        return dicom_out.send_cstore(files, ae_title=d.ae_title, host=d.host, port=d.port,
                                     calling_ae=settings.BRAINAI_DICOM_AE_TITLE,
                                     timeout_s=settings.BRAINAI_DELIVERY_TIMEOUT_S)
    try:  # "env:NAME" secrets are read here, at send time, in the outbound worker; never logged
        password, token = d.secret("password"), d.secret("token")
    except MissingSecret as exc:
        raise dicom_out.SendError(str(exc)) from None
    return dicom_out.send_stow(files, url=d.url, username=d.username, password=password, token=token,
                               timeout_s=settings.BRAINAI_DELIVERY_TIMEOUT_S)


def send_delivery(delivery_id: int) -> Delivery | None:
    """One attempt at a pending delivery; None when there is nothing to send (already sent,
    failed, gone, or the next attempt not due yet: safe to run twice).

    Returns the delivery: ``sent``; ``failed`` with the reason once it has had
    BRAINAI_DELIVERY_MAX_ATTEMPTS; else still ``pending`` with the reason, for the
    caller to try again later (retry_delay).
    """
    delivery = _count_attempt(delivery_id)
    if delivery is None:
        return None
    target = {"series_instance_uid": delivery.sr_series_uid, "sop_instance_uid": delivery.sr_sop_instance_uid,
              "instance_number": delivery.report.version * 2 + int(delivery.verified)}
    previous = ({"series_instance_uid": delivery.replaces_series_uid,
                 "sop_instance_uid": delivery.replaces_sop_instance_uid}
                if delivery.replaces_sop_instance_uid else None)
    try:
        files = build_files(delivery.report, sr_target=target, previous=previous,
                            with_overlays=delivery.with_overlays)
        sent, reason = _send(delivery, files), ""
    except dicom_out.SendError as exc:
        sent, reason = 0, str(exc)
    except (OSError, ValueError) as exc:  # a map file gone, a header pydicom refuses
        sent, reason = 0, f"could not build the files: {type(exc).__name__}: {exc}"
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().select_related("destination").get(pk=delivery.pk)
        if reason == "":
            state.move_delivery(delivery, DeliveryStatus.SENT, reason="", files=sent, sent_at=timezone.now())
            logger.info("delivery %s: %d files to destination %s", delivery.pk, sent, delivery.destination_id)
            events.record(delivery.report.study_id, EventKind.SENT, delivery=delivery.pk,
                          destination=delivery.destination_id, files=sent, attempts=delivery.attempts)
        elif delivery.attempts >= settings.BRAINAI_DELIVERY_MAX_ATTEMPTS:
            state.move_delivery(delivery, DeliveryStatus.FAILED,
                                reason=f"gave up after {delivery.attempts} attempts; last error: {reason}"[:2000])
            events.record(delivery.report.study_id, EventKind.FAILED, scope="delivery", delivery=delivery.pk,
                          destination=delivery.destination_id, attempts=delivery.attempts, reason=reason)
            logger.warning("delivery %s failed for good after %d attempts", delivery.pk, delivery.attempts)
        else:
            state.move_delivery(delivery, DeliveryStatus.PENDING, reason=reason[:2000])
    return delivery


def retry_delay(delivery: Delivery) -> float:
    """Seconds before the next attempt: BRAINAI_DELIVERY_RETRY_S, doubling per attempt."""
    return settings.BRAINAI_DELIVERY_RETRY_S * 2 ** max(delivery.attempts - 1, 0)


def retry_delivery(delivery: Delivery, user, *, via: Via = Via.ADMIN) -> Delivery:
    """Send a failed (or sent) delivery again with a fresh count of attempts; admins only."""
    if user is None or not user.is_staff:
        raise PermissionDenied("only an admin may send results again")
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().select_related("report").get(pk=delivery.pk)
        if delivery.status == DeliveryStatus.PENDING:
            raise InvalidState(f"delivery {delivery.pk} is already waiting to be sent")
        state.move_delivery(delivery, DeliveryStatus.PENDING, attempts=0)
        audit(AuditAction.RETRY_DELIVERY, user, via=via, report=delivery.report, delivery=delivery.pk,
              destination=delivery.destination_id)
        enqueue(SEND_RESULTS, delivery.pk)
    return delivery

