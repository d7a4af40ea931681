"""What reviewers teach the model: the signed verdicts against the AI findings (issue #20).

Pure aggregation, no writes. ``reviewer_analytics`` reads the current version of every
signed or amended report (the verdict as it stands) whose current signature falls in the
date range, and gives, per model (name + version) and per AI label:

- ``verdicts``: how many agree / disagree / not_assessable / not_recorded (a blank verdict);
- ``agreement_rate``: agree / (agree + disagree); None when neither was recorded;
- the ``confusion`` of AI label (rows) against the radiologist's label (columns): agree counts
  in the AI label's column, disagree in ``verdict_label``'s, not assessable in its own column;
  not recorded is left out (it is in ``verdicts``);
- ``calibration``: the AI confidence against the verdict (agree = the AI was right), over the
  reports with agree or disagree: equal-width reliability bins (mean confidence, observed
  agreement) and the expected calibration error ``ece`` = sum over bins of
  n_bin / n * |observed agreement - mean confidence|;
- ``time_to_sign``: seconds from ready (the report reached awaiting review) to its first
  signature, median and p90 (linear interpolation between order statistics, as numpy's
  default). Ready is the latest ``PipelineEvent`` FINALISED of the study at or before that
  signature (written by finalize_report when the report moves to awaiting review; a later
  failure and re-run finalises again before anyone can sign). Studies without the event
  (finished before the event log, or its best-effort write failed) fall back to
  ``explanation_generated_at``, which is when finalisation was queued unless the
  explanation was regenerated while awaiting review (then the time is short by that much);
  ``from_event`` and ``from_explanation`` say how many times came from each.

Nothing here names a patient, a study or a person: model names, labels, counts and times.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.utils import timezone

from scans.models import AuditAction, EventKind, Label, PipelineEvent, Report, ReportStatus, Verdict, Via
from scans.permissions import ANALYTICS
from scans.services.audit import audit

NOT_ASSESSABLE = Verdict.NOT_ASSESSABLE.value
NOT_RECORDED = "not_recorded"
BINS = 10
_CLASS_COLUMNS = [Label.GLIOMA.value, Label.MENINGIOMA.value, Label.NOTUMOR.value, Label.PITUITARY.value]
_LABEL_ORDER = {value: i for i, value in enumerate(Label.values)}


@dataclass(frozen=True)
class _Row:
    """One current signed report, reduced to what the figures need."""

    model_name: str
    model_version: str
    label: str
    confidence: float | None
    verdict: str
    verdict_label: str
    seconds_to_sign: float | None
    timed_from: str | None  # "event" or "explanation"

    @property
    def radiologist_column(self) -> str | None:
        if self.verdict == Verdict.AGREE:
            return self.label
        if self.verdict == Verdict.DISAGREE:
            return self.verdict_label
        if self.verdict == Verdict.NOT_ASSESSABLE:
            return NOT_ASSESSABLE
        return None


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def signed_reports(date_from: dt.date | None = None, date_to: dt.date | None = None):
    """The current signed/amended versions whose current signature is within the days given
    (both ends included, in the server's time zone)."""
    reports = Report.objects.current().filter(status__in=[ReportStatus.SIGNED, ReportStatus.AMENDED])
    if date_from is not None:
        reports = reports.filter(signed_at__gte=_day_start(date_from))
    if date_to is not None:
        reports = reports.filter(signed_at__lt=_day_start(date_to + dt.timedelta(days=1)))
    return reports


def _rows(reports) -> list[_Row]:
    values = list(reports.values("study_id", "model_name", "model_version", "label", "confidence", "verdict",
                                 "verdict_label", "signed_at", "explanation_generated_at"))
    studies = reports.values("study_id")
    first_signed = dict(Report.objects.filter(study_id__in=studies, status=ReportStatus.SIGNED)
                        .values_list("study_id", "signed_at"))
    finalised = defaultdict(list)
    for study_id, when in PipelineEvent.objects.filter(study_id__in=studies, kind=EventKind.FINALISED) \
            .values_list("study_id", "created_at"):
        finalised[study_id].append(when)
    rows = []
    for v in values:
        signed = first_signed.get(v["study_id"]) or v["signed_at"]
        ready = max((t for t in finalised.get(v["study_id"], ()) if t <= signed), default=None)
        timed_from = "event" if ready is not None else None
        if ready is None and v["explanation_generated_at"] and v["explanation_generated_at"] <= signed:
            ready, timed_from = v["explanation_generated_at"], "explanation"
        rows.append(_Row(v["model_name"], v["model_version"], v["label"], v["confidence"], v["verdict"],
                         v["verdict_label"], (signed - ready).total_seconds() if ready is not None else None,
                         timed_from))
    return rows


def quantile(values: list[float], q: float) -> float | None:
    """The q-quantile of ``values`` by linear interpolation (numpy's default); None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def calibration(rows: list[_Row], bins: int = BINS) -> dict:
    """Reliability bins and ECE of the AI confidence against agree (1) / disagree (0)."""
    pairs = [(r.confidence, 1.0 if r.verdict == Verdict.AGREE else 0.0) for r in rows
             if r.verdict in (Verdict.AGREE, Verdict.DISAGREE) and r.confidence is not None]
    grouped = defaultdict(list)
    for conf, hit in pairs:
        grouped[min(int(conf * bins), bins - 1)].append((conf, hit))
    out, ece = [], 0.0
    for b in range(bins):
        members = grouped.get(b, [])
        mean_conf = sum(c for c, _ in members) / len(members) if members else None
        observed = sum(h for _, h in members) / len(members) if members else None
        if members:
            ece += len(members) / len(pairs) * abs(observed - mean_conf)
        out.append({"lower": b / bins, "upper": (b + 1) / bins, "n": len(members),
                    "mean_confidence": mean_conf, "observed_agreement": observed})
    return {"n": len(pairs), "bins": out, "ece": ece if pairs else None}


def _summary(rows: list[_Row], bins: int) -> dict:
    counts = {v: sum(r.verdict == v for r in rows) for v in Verdict.values}
    counts[NOT_RECORDED] = sum(not r.verdict for r in rows)
    judged = counts[Verdict.AGREE] + counts[Verdict.DISAGREE]
    times = [r.seconds_to_sign for r in rows if r.seconds_to_sign is not None]
    return {
        "n": len(rows), "verdicts": counts,
        "agreement_rate": counts[Verdict.AGREE] / judged if judged else None,
        "calibration": calibration(rows, bins),
        "time_to_sign": {"n": len(times), "median_s": quantile(times, 0.5), "p90_s": quantile(times, 0.9),
                         "from_event": sum(r.timed_from == "event" for r in rows),
                         "from_explanation": sum(r.timed_from == "explanation" for r in rows)},
    }


def _sorted_labels(labels) -> list[str]:
    return sorted(labels, key=lambda value: (_LABEL_ORDER.get(value, len(_LABEL_ORDER)), value))


def confusion(rows: list[_Row]) -> dict:
    """AI label (rows) x the radiologist's label (columns), over the reports with a verdict."""
    judged = [r for r in rows if r.radiologist_column]
    extra = {r.radiologist_column for r in judged} - set(_CLASS_COLUMNS) - {NOT_ASSESSABLE}
    columns = _CLASS_COLUMNS + _sorted_labels(extra) + [NOT_ASSESSABLE]
    pairs = Counter((r.label, r.radiologist_column) for r in judged)
    matrix = []
    for ai_label in _sorted_labels({r.label for r in judged}):
        cells = [pairs[(ai_label, c)] for c in columns]
        matrix.append({"ai_label": ai_label, "counts": cells, "total": sum(cells)})
    return {"columns": columns, "rows": matrix}


def reviewer_analytics(*, date_from: dt.date | None = None, date_to: dt.date | None = None,
                       bins: int = BINS) -> dict:
    """The figures per model and AI label (see the module docstring), as plain JSON values."""
    rows = _rows(signed_reports(date_from, date_to))
    by_model = defaultdict(list)
    for r in rows:
        by_model[(r.model_name, r.model_version)].append(r)
    models = []
    for (name, version), members in sorted(by_model.items()):
        by_label = defaultdict(list)
        for r in members:
            by_label[r.label].append(r)
        models.append({
            "model_name": name, "model_version": version, **_summary(members, bins),
            "labels": [{"label": label, **_summary(by_label[label], bins)} for label in _sorted_labels(by_label)],
            "confusion": confusion(members),
        })
    return {"date_from": date_from.isoformat() if date_from else None,
            "date_to": date_to.isoformat() if date_to else None,
            "n": len(rows), "bins": bins, "models": models}


def view_analytics(user, *, via: Via, ip_address: str | None = None, date_from: dt.date | None = None,
                   date_to: dt.date | None = None) -> dict:
    """``reviewer_analytics`` for a person: radiologists and admins (scans.permissions.ANALYTICS),
    audited as VIEW_ANALYTICS with the range and the count of reports, nothing else."""
    ANALYTICS.require(user, "view the reviewer analytics")
    figures = reviewer_analytics(date_from=date_from, date_to=date_to)
    audit(AuditAction.VIEW_ANALYTICS, user, via=via, ip_address=ip_address, reports=figures["n"],
          date_from=figures["date_from"], date_to=figures["date_to"])
    return figures
