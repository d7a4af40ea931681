"""The pipeline event log: one writer of PipelineEvent rows, what the operator's view reads.

    record(study_or_id, kind, *, worker="", **detail)

Each step of a study through the pipeline (received, queued, each batch, explained,
finalised, sent, failed, and operator actions) is one row. ``detail`` holds counts, lanes,
stage names, seconds, ids of our own rows and reasons; never names, patient ids, file
names or UIDs. Two guards keep it that way: only the keys in ``DETAIL_KEYS`` are stored
(anything else is dropped and logged by name), and text values are scrubbed of anything
shaped like a path, a file name or a DICOM UID (``scrub``).

Best-effort: writing an event never fails the pipeline. The row is written in a savepoint
of the caller's transaction (so it rolls back with the step it describes, and a failed
insert leaves that transaction usable); any error is logged and swallowed.
"""
from __future__ import annotations

import logging
import math
import re
import socket

from django.db import transaction

from scans.models import EventKind, PipelineEvent, Study

logger = logging.getLogger(__name__)

# What an event may say. Values are numbers, booleans, short texts or lists of those.
DETAIL_KEYS = frozenset({
    "action", "analysed", "attempts", "count", "delivery", "destination", "failed", "fallback", "files", "from",
    "lane", "priority", "provider", "reason", "report", "requeued", "scan", "scans", "scope", "seconds",
    "skipped", "stage", "status", "to", "upload", "version", "via",
})
MAX_TEXT = 300

# A DICOM UID (digits and dots, at least four parts), a path (two or more parts joined by
# / or \), a file name with an extension. Replaced, never stored.
_UID = re.compile(r"\b\d+(?:\.\d+){3,}\b")
_PATH = re.compile(r"(?:[A-Za-z]:)?[\w.~-]*(?:[/\\][\w.~-]+)+")
_FILE = re.compile(r"\b[\w-]+\.(?:dcm|dicom|png|jpe?g|zip|nii(?:\.gz)?|npz|keras|csv|txt|json|bin)\b", re.I)


def scrub(text: str) -> str:
    """``text`` without paths, file names or UIDs, at most MAX_TEXT characters."""
    text = _UID.sub("<uid>", str(text))
    text = _PATH.sub("<path>", text)
    text = _FILE.sub("<file>", text)
    return text[:MAX_TEXT]


def _clean(value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in list(value)[:50]]
    return scrub(value)


def hostname() -> str:
    """This process's host name: what an event and ``Scan.worker`` say when the caller has
    no Celery hostname to hand."""
    return socket.gethostname()


def lane_of(study) -> str:
    """The gpu lane a study's analysis is queued in (its priority names it)."""
    return str(getattr(study, "priority", "") or "")


def record(study_or_id, kind: str, *, worker: str = "", **detail) -> PipelineEvent | None:
    """Append one event for a study (a Study or its id); None when it could not be written.

    ``kind`` is an EventKind. Keys of ``detail`` outside DETAIL_KEYS are dropped.
    """
    try:
        study_id = study_or_id.pk if isinstance(study_or_id, Study) else int(study_or_id)
        dropped = sorted(set(detail) - DETAIL_KEYS)
        if dropped:
            logger.warning("pipeline event %s for study %s: detail keys not stored: %s", kind, study_id, dropped)
        clean = {key: _clean(value) for key, value in detail.items() if key in DETAIL_KEYS}
        with transaction.atomic():  # a savepoint inside the caller's transaction
            return PipelineEvent.objects.create(study_id=study_id, kind=EventKind(kind), worker=str(worker)[:200],
                                                detail=clean)
    except Exception as exc:  # noqa: BLE001 - an event is never worth failing the pipeline for
        logger.warning("pipeline event %s for study %r not recorded (%s)", kind,
                       getattr(study_or_id, "pk", study_or_id), type(exc).__name__)
        return None
