"""/metrics: Prometheus metrics, read from the database and the broker at scrape time.

Web processes and Celery workers are separate processes, often on several hosts, and a
scrape reaches one web process. So nothing here counts in memory: :class:`BrainAICollector`
asks the database (and Redis, for the lanes) when Prometheus scrapes, and every web
process answers the same, across hosts and restarts. The figures are the stored rows:
counts over every row (a re-run deletes its scans' analyses, so a ``_total`` can step
down: Prometheus reads a counter reset), and timing histograms over the latest
``BRAINAI_METRICS_WINDOW`` slices and explanations, so that a scrape's cost stays bounded
as the tables grow. docs/operations.md, "Monitoring (Prometheus)", lists the families,
the scrape configuration, the alerts and what a scrape costs; docs/grafana-dashboard.json
draws them.

Each family is one SQL aggregate (GROUP BY; the histograms' buckets are conditional
counts over a materialized CTE, which needs SQLite 3.35 or PostgreSQL 12): no row is
loaded into Python. Labels are enumerations (statuses, lanes, stages, provider and error
codes), model names and the names an admin gave to destinations and notification
targets: never a patient, a file name or a UID.

Access: ``BRAINAI_METRICS_ALLOW_IPS`` (addresses or networks, default loopback; ``none``
for none) or ``Authorization: Bearer <BRAINAI_METRICS_TOKEN>``; 401 without a token when
one is configured, 403 for anything else. A request that came through a proxy (it carries
X-Forwarded-For, X-Real-IP or Forwarded) is never admitted by its address: behind a proxy
on the same host every request would come from 127.0.0.1.
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import threading
import time

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

logger = logging.getLogger(__name__)

# Seconds per slice (the Analyzer's per-slice share of each batch stage, and their total).
SLICE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds of one explanation (the LLM call, retries included, or the template).
LLM_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
# The stages the Analyzer times (ml.analysis.analyzer.STAGES) and their sum; a name
# outside this list is not exported (Analysis.timings is JSON, the list keeps the
# label set fixed).
STAGES = ("preprocess", "model", "guard", "maps", "saliency", "region", "faithfulness")
QUEUE_TIMEOUT_S = 2.0  # the most a scrape waits for the broker
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")
# "timeout: gemini (model) gave no answer ...", "http_error: openai (model) ...": the code and
# the provider that failed (llm.explain); "invalid finding: ..." (workers.tasks) names none.
_FALLBACK = re.compile(r"^(?P<code>[a-z_]{1,40}): (?P<provider>[a-z_]{1,20}) \(")
_FALLBACK_PREFIX = 48  # characters of the reason grouped on: the code and the provider fit


# --- access ---------------------------------------------------------------------------------


def allowed_networks(entries) -> list:
    """``BRAINAI_METRICS_ALLOW_IPS`` as networks; ``["none"]`` (or empty) allows no address.

    Raises:
        ImproperlyConfigured: an entry is neither an address nor a network.
    """
    entries = [e for e in entries or () if e.lower() != "none"]
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"BRAINAI_METRICS_ALLOW_IPS must list IP addresses or networks (or 'none'); received {entry!r}"
            ) from None
    return networks


def _address_allowed(request) -> bool:
    if any(request.META.get(h) for h in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return any(address in net for net in allowed_networks(settings.BRAINAI_METRICS_ALLOW_IPS))


def _bearer(request) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def refusal(request) -> HttpResponse | None:
    """None when the request may read the metrics; else the 401 or 403 to answer."""
    token = settings.BRAINAI_METRICS_TOKEN
    given = _bearer(request)
    if token and given is not None and hmac.compare_digest(given.encode(), token.encode()):
        return None
    if _address_allowed(request):
        return None
    if token and given is None:
        response = HttpResponse("metrics: bearer token required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse("metrics: forbidden\n", status=403, content_type="text/plain")


# --- the collector --------------------------------------------------------------------------


def _buckets(prefix: str, bounds) -> list[str]:
    return [f"{prefix}_le_{i}" for i in range(len(bounds))]


def histogram_rows(inner, group: str, columns, bounds) -> list[dict]:
    """Bucket counts, count and sum of each of ``columns`` of the queryset ``inner``, per ``group``.

    ``inner`` selects ``group`` and the columns (annotations: a JSON key cast to a float,
    say). It runs once, materialized, and the buckets are counted over its plain columns:
    written as conditional aggregates over the annotations directly, every bucket would
    extract the JSON again (13 buckets x 8 stages per row; docs/operations.md,
    "Monitoring (Prometheus)", has the measurement). Rows are dicts: ``group``, and per
    column ``<col>_le_<i>``, ``<col>_count``, ``<col>_sum``.
    """
    from django.db import connection

    q = connection.ops.quote_name
    sql, params = inner.query.sql_with_params()
    names, select, select_params = [group], [q(group)], []
    for col in columns:
        for name, le in zip(_buckets(col, bounds), bounds):
            names.append(name)
            select.append(f"SUM(CASE WHEN {q(col)} <= %s THEN 1 ELSE 0 END)")
            select_params.append(float(le))
        names += [f"{col}_count", f"{col}_sum"]
        select += [f"COUNT({q(col)})", f"SUM({q(col)})"]
    query = (f"WITH t AS MATERIALIZED ({sql}) SELECT {', '.join(select)} FROM t GROUP BY {q(group)} "
             f"ORDER BY {q(group)}")
    with connection.cursor() as cursor:
        cursor.execute(query, (*params, *select_params))
        return [{n: v if n == group else (v or 0) for n, v in zip(names, row)} for row in cursor.fetchall()]


def _histogram_buckets(row: dict, bounds, prefix: str):
    buckets = [(repr(float(le)), row[name]) for name, le in zip(_buckets(prefix, bounds), bounds)]
    buckets.append(("+Inf", row[f"{prefix}_count"]))
    return buckets, float(row[f"{prefix}_sum"] or 0.0)


class BrainAICollector:
    """One Prometheus collector for the whole service: each family is one query (the
    queue's is one Redis round trip)."""

    def collect(self):
        start = time.perf_counter()
        yield from self._studies()
        yield from self._scans()
        yield from self._queue()
        yield from self._analysis()
        yield from self._analysis_counts()
        yield from self._llm()
        yield from self._notifications()
        yield from self._sends()
        took = GaugeMetricFamily("brainai_metrics_scrape_seconds",
                                 "Seconds this web process spent collecting the metrics of this scrape")
        took.add_metric([], time.perf_counter() - start)
        yield took

    def describe(self):
        return []  # collected at scrape time only; registering it queries nothing

    # studies and scans by state -------------------------------------------------------------

    def _studies(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from scans.models import Priority, Study, StudyStatus

        counts = {(r["status"], r["priority"]): r["n"]
                  for r in Study.objects.order_by().values("status", "priority").annotate(n=Count("pk"))}
        family = GaugeMetricFamily("brainai_studies", "Studies by status and priority lane",
                                   labels=["status", "priority"])
        for status in StudyStatus.values:
            for priority in Priority.values:
                family.add_metric([status, priority], counts.get((status, priority), 0))
        yield family

        now = timezone.now()
        oldest = {r["status"]: r["oldest"] for r in Study.objects.order_by()
                  .filter(status__in=(StudyStatus.ANALYZING, StudyStatus.EXPLAINING))
                  .values("status").annotate(oldest=Min("created_at"))}
        family = GaugeMetricFamily("brainai_oldest_unfinished_study_age_seconds",
                                   "Age of the oldest study still analysing or explaining (0 when none)",
                                   labels=["status"])
        for status in (StudyStatus.ANALYZING, StudyStatus.EXPLAINING):
            at = oldest.get(status)
            family.add_metric([status], max((now - at).total_seconds(), 0.0) if at else 0.0)
        yield family

    def _scans(self):
        from django.db.models import Count

        from scans.models import Scan, ScanStatus

        counts = dict(Scan.objects.order_by().values_list("status").annotate(n=Count("pk")))
        family = GaugeMetricFamily("brainai_scans", "Scans (2-D slices) by status", labels=["status"])
        for status in ScanStatus.values:
            family.add_metric([status], counts.get(status, 0))
        yield family

    # the queue --------------------------------------------------------------------------------

    def _queue(self):
        lengths = lane_lengths_within(QUEUE_TIMEOUT_S)
        up = GaugeMetricFamily("brainai_broker_up", "1 when the broker answered this scrape, else 0")
        up.add_metric([], 1.0 if lengths is not None else 0.0)
        yield up
        family = GaugeMetricFamily("brainai_queue_length", "Tasks waiting in the broker, per gpu lane and queue",
                                   labels=["lane"])
        for lane, n in sorted((lengths or {}).items()):
            family.add_metric([str(lane)], n)
        yield family

    # the analysis -----------------------------------------------------------------------------

    def _analysis(self):
        from django.db.models import FloatField
        from django.db.models.fields.json import KT
        from django.db.models.functions import Cast

        from scans.models import Analysis

        window = settings.BRAINAI_METRICS_WINDOW
        columns = {f"t_{s}": Cast(KT(f"timings__{s}"), FloatField()) for s in ("total", *STAGES)}
        latest = Analysis.objects.order_by("-pk").values("model_name", **columns)[:window]
        per_slice = HistogramMetricFamily(
            "brainai_analysis_slice_seconds",
            f"Seconds of analysis per slice (the Analyzer's batch time divided by its slices), over the "
            f"latest {window} analysed slices", labels=["model"])
        per_stage = HistogramMetricFamily(
            "brainai_analysis_stage_seconds",
            f"Seconds per slice in each stage of the Analyzer, over the latest {window} analysed slices",
            labels=["model", "stage"])
        for row in histogram_rows(latest, "model_name", columns, SLICE_BUCKETS):
            model = row["model_name"] or "unknown"
            per_slice.add_metric([model], *_histogram_buckets(row, SLICE_BUCKETS, "t_total"))
            for s in STAGES:
                per_stage.add_metric([model, s], *_histogram_buckets(row, SLICE_BUCKETS, f"t_{s}"))
        yield per_slice
        yield per_stage

    def _analysis_counts(self):
        """Counts over every stored analysis: no JSON is read."""
        from django.db.models import Count, Q

        from scans.models import Analysis

        totals = (Analysis.objects.order_by().values("model_name")
                  .annotate(n=Count("pk"), rejected=Count("pk", filter=Q(in_distribution=False))))
        analysed = CounterMetricFamily("brainai_analysed_slices", "Slices analysed (stored analyses)",
                                       labels=["model"])
        rejected = CounterMetricFamily(
            "brainai_guard_rejections", "Analysed slices the input guard rejected (not a brain MRI)",
            labels=["model"])
        for row in totals:
            analysed.add_metric([row["model_name"] or "unknown"], row["n"])
            rejected.add_metric([row["model_name"] or "unknown"], row["rejected"])
        yield analysed
        yield rejected

    # the LLM ----------------------------------------------------------------------------------

    def _llm(self):
        from django.db.models import Count, F, FloatField
        from django.db.models.functions import Cast, Substr

        from scans.models import Report

        # The first version of each report: an amendment copies the explanation it signed.
        explained = Report.objects.order_by().filter(version=1, explanation_latency_ms__isnull=False)
        window = settings.BRAINAI_METRICS_WINDOW
        latest = explained.order_by("-pk").values(
            "explanation_provider", t_llm=Cast(F("explanation_latency_ms"), FloatField()) / 1000.0)[:window]
        latency = HistogramMetricFamily(
            "brainai_llm_latency_seconds", "Seconds per explanation (the LLM call with its retries, or the "
            f"template), by the provider that wrote it, over the latest {window} explanations", labels=["provider"])
        for row in histogram_rows(latest, "explanation_provider", ["t_llm"], LLM_BUCKETS):
            latency.add_metric([row["explanation_provider"] or "none"], *_histogram_buckets(row, LLM_BUCKETS, "t_llm"))
        yield latency

        fallbacks: dict[tuple[str, str], int] = {}
        reasons = (explained.exclude(explanation_fallback_reason="")
                   .annotate(head=Substr("explanation_fallback_reason", 1, _FALLBACK_PREFIX))
                   .values("head").annotate(n=Count("pk")))
        for row in reasons:
            key = fallback_labels(row["head"])
            fallbacks[key] = fallbacks.get(key, 0) + row["n"]
        family = CounterMetricFamily("brainai_llm_fallbacks",
                                   "Explanations that fell back to the offline template, by the provider "
                                   "that failed and why", labels=["provider", "reason"])
        for (provider, reason), n in sorted(fallbacks.items()):
            family.add_metric([provider, reason], n)
        yield family

    # notifications and DICOM sends ---------------------------------------------------------------

    def _notifications(self):
        from django.db.models import Count

        from scans.models import Notification, NotificationStatus

        counts = {(r["target__name"], r["target__kind"], r["status"]): r["n"] for r in
                  Notification.objects.order_by().values("target__name", "target__kind", "status")
                  .annotate(n=Count("pk"))}
        family = GaugeMetricFamily("brainai_notifications", "Notifications (webhook, e-mail) by target and outcome",
                                   labels=["target", "kind", "status"])
        # every outcome of each target that has any, so an alert on "failed" sees a 0
        for name, kind in sorted({k[:2] for k in counts}):
            for status in NotificationStatus.values:
                family.add_metric([name, kind, status], counts.get((name, kind, status), 0))
        yield family

    def _sends(self):
        from django.db.models import Count, Sum

        from scans.models import Delivery, DeliveryStatus

        rows = {(r["destination__name"], r["destination__kind"], r["status"]): (r["n"], r["attempts"] or 0) for r in
                Delivery.objects.order_by().values("destination__name", "destination__kind", "status")
                .annotate(n=Count("pk"), attempts=Sum("attempts"))}
        sends = GaugeMetricFamily("brainai_dicom_sends", "DICOM sends (SR and overlays of one report version to "
                                  "one destination) by outcome", labels=["destination", "kind", "status"])
        attempts = CounterMetricFamily("brainai_dicom_send_attempts", "Attempts made by those sends",
                                     labels=["destination", "kind", "status"])
        for name, kind in sorted({k[:2] for k in rows}):
            for status in DeliveryStatus.values:
                n, tries = rows.get((name, kind, status), (0, 0))
                sends.add_metric([name, kind, status], n)
                attempts.add_metric([name, kind, status], tries)
        yield sends
        yield attempts


def fallback_labels(reason: str) -> tuple[str, str]:
    """(provider, reason code) of a stored fallback reason; no free text reaches a label."""
    match = _FALLBACK.match(reason or "")
    if match:
        return match["provider"], match["code"]
    if (reason or "").startswith("invalid finding"):
        return "none", "invalid_finding"
    return "unknown", "other"


def lane_lengths_within(timeout_s: float) -> dict[str, int] | None:
    """Messages waiting per lane (scans.services.queue.lane_lengths), or None when the
    broker does not answer within ``timeout_s`` (the scrape never hangs on it)."""
    from scans.services import queue

    box: dict = {}

    def ask():
        try:
            box["lengths"] = queue.lane_lengths()
        except Exception as exc:  # a scrape reports a broker that is down; it never raises
            logger.warning("metrics: queue lengths unavailable (%s)", type(exc).__name__)
            box["lengths"] = None

    thread = threading.Thread(target=ask, name="metrics-queue", daemon=True)
    thread.start()
    thread.join(timeout_s)
    lengths = box.get("lengths")
    return {str(k): int(v) for k, v in lengths.items()} if lengths is not None else None


registry = CollectorRegistry(auto_describe=False)
registry.register(BrainAICollector())


@login_not_required
@never_cache
def metrics(request):
    # Who is asking comes first, so a caller who may not scrape learns nothing, not even
    # which methods the endpoint takes.
    refused = refusal(request)
    if refused is not None:
        return refused
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    # The text format Prometheus asks for (Accept): OpenMetrics, text 1.0.0, else text 0.0.4.
    encode, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(encode(registry), content_type=content_type)
