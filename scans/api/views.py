"""API views: parse, call a scans.services verb or a selector, serialise. No logic here."""
from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from scans import fhir, selectors, services, snapshot
from scans.api.filters import ReportFilter, StudyFilter
from scans.api.permissions import CanViewAnalytics, IsClinicUser, IsRadiologist, MayChangePriority
from scans.api.serializers import (
    AnalyticsFilterSerializer, AnalyticsSerializer, DetailRequestSerializer, ReportDetailSerializer, ReportSerializer, ReviewSerializer, SignSerializer,
    StudyDetailSerializer,
    PriorityRequestSerializer, PriorityResultSerializer, StudySerializer, UploadRequestSerializer,
    UploadResultSerializer,
)
from scans.models import AuditAction, Report, Study, Upload, Via
from scans.views.common import client_ip


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class InsufficientStorage(APIException):
    """507: the media storage refused a write; nothing of the request was recorded."""

    status_code = status.HTTP_507_INSUFFICIENT_STORAGE
    default_code = "insufficient_storage"


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class TokenView(ObtainAuthToken):
    """POST {username, password} -> {"token": "..."}; then send ``Authorization: Token <token>``.

    Failures count towards the same django-axes lockout as the login page; a locked-out
    username and address get 429, even with the right password. Anonymous callers are
    throttled here as well (the anon rate, per address).
    """

    throttle_classes = [AnonRateThrottle]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 429: OpenApiTypes.OBJECT})
    def post(self, request, *args, **kwargs):
        if AxesProxyHandler.is_locked(request._request, {"username": request.data.get("username")}):
            return Response({"detail": "too many failed logins; try again later"},
                            status=status.HTTP_429_TOO_MANY_REQUESTS)
        return super().post(request, *args, **kwargs)


def _upload_body(request, upload: Upload, studies) -> dict:
    links = [{"id": s.pk, "url": request.build_absolute_uri(s.get_absolute_url())} for s in studies]
    return {"id": upload.pk, "studies": links, "accepted": upload.accepted, "rejected": upload.rejected}


class UploadView(APIView):
    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [IsClinicUser]

    @extend_schema(request=UploadRequestSerializer, responses={202: UploadResultSerializer})
    def post(self, request):
        form = UploadRequestSerializer(data={**request.data.dict(), "files": request.FILES.getlist("files")})
        form.is_valid(raise_exception=True)
        fields = {k: v for k, v in form.validated_data.items() if k not in ("files", "model", "priority")}
        try:
            result = services.register_upload(request.user, form.validated_data["files"], fields, via=Via.API,
                                              model=form.validated_data.get("model"),
                                              priority=form.validated_data.get("priority") or None)
        except services.StorageUnavailable as exc:
            raise InsufficientStorage(str(exc)) from None
        return Response(_upload_body(request, result.upload, result.studies), status=status.HTTP_202_ACCEPTED)


class UploadDetailView(APIView):
    permission_classes = [IsClinicUser]

    @extend_schema(responses=UploadResultSerializer)
    def get(self, request, pk: int):
        try:
            upload = selectors.upload_detail(pk)
        except Upload.DoesNotExist:
            raise Http404 from None
        return Response(_upload_body(request, upload, selectors.studies_of_upload(upload)))


class StudyViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = StudySerializer
    filterset_class = StudyFilter
    pagination_class = Pagination

    def get_queryset(self):
        qs = selectors.studies().prefetch_related("reports")
        if self.action == "retrieve":
            return qs.prefetch_related("scans__analysis")
        return qs

    def get_serializer_class(self):
        return StudyDetailSerializer if self.action == "retrieve" else StudySerializer

    def retrieve(self, request, *args, **kwargs):
        response = super().retrieve(request, *args, **kwargs)
        services.record_read(AuditAction.VIEW_STUDY, request.user, via=Via.API, ip_address=client_ip(request),
                             study_id=response.data["id"])
        return response

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        _record_list(request, AuditAction.LIST_STUDIES, response)
        return response

    @extend_schema(request=PriorityRequestSerializer, responses=PriorityResultSerializer)
    @action(detail=True, methods=["post"], permission_classes=[MayChangePriority])
    def priority(self, request, pk=None):
        """Move the study to another gpu lane (radiologists, operators, admins); no patient data back."""
        body = PriorityRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        study = get_object_or_404(Study, pk=pk)
        try:
            changed = services.set_priority(study, body.validated_data["priority"], user=request.user, via=Via.API)
        except services.ServiceError as exc:
            raise Conflict(str(exc)) from None
        return Response({"id": study.pk, "priority": body.validated_data["priority"], "changed": changed})


def _record_list(request, action, response) -> None:
    """A page of a list names patients: record which rows it showed (ids only)."""
    rows = response.data.get("results", response.data) if isinstance(response.data, dict) else response.data
    services.record_read(action, request.user, via=Via.API, ip_address=client_ip(request),
                         ids=[row["id"] for row in rows])


class ReportViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = ReportSerializer
    filterset_class = ReportFilter
    pagination_class = Pagination
    queryset = Report.objects.none()

    def get_queryset(self):
        return selectors.reports()

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        _record_list(request, AuditAction.LIST_REPORTS, response)
        return response

    def _report(self, pk) -> Report:
        try:
            return selectors.report_for_api(int(pk))
        except (Report.DoesNotExist, ValueError):
            raise Http404 from None

    @extend_schema(responses=ReportDetailSerializer)
    def retrieve(self, request, pk=None):
        report = self._report(pk)
        services.record_view(report, request.user, via=Via.API, ip_address=client_ip(request))
        return Response(ReportDetailSerializer(report, context={"request": request}).data)

    def _act(self, request, pk, verb, *args, **kwargs):
        report = self._report(pk)
        try:
            result = verb(report, request.user, *args, via=Via.API, **kwargs)
        except services.ServiceError as exc:
            raise Conflict(str(exc)) from None
        fresh = selectors.report_for_api(result.pk)
        return Response(ReportDetailSerializer(fresh, context={"request": request}).data)

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def snapshot(self, request, pk=None):
        """The signed version's snapshot as the exact bytes its sha256 is taken over."""
        report = self._report(pk)
        if not report.snapshot:
            raise Http404("this version is not signed; it has no snapshot")
        services.record_view(report, request.user, via=Via.API, ip_address=client_ip(request))
        return HttpResponse(snapshot.canonical(report.snapshot), content_type="application/json")

    @extend_schema(responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT},
                   description="The report version as a FHIR R4 DiagnosticReport with its Observations "
                               "(docs/integration.md, \"FHIR\"): preliminary before sign-off, final, amended.")
    @action(detail=True, methods=["get"])
    def fhir(self, request, pk=None):
        """FHIR R4 DiagnosticReport of this version; a read of the report (audited)."""
        report = self._report(pk)
        services.record_view(report, request.user, via=Via.API, ip_address=client_ip(request))
        return JsonResponse(fhir.diagnostic_report(report), content_type="application/fhir+json")

    def _sign_body(self, request, pk) -> dict:
        """The sign/review body, checked against the report's AI label (400 when it does not hold)."""
        body = SignSerializer(data=request.data, context={"ai_label": self._report(pk).label})
        body.is_valid(raise_exception=True)
        return body.validated_data

    @extend_schema(request=SignSerializer, responses=ReportDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsRadiologist])
    def sign(self, request, pk=None):
        """Sign (radiologist only). Optional findings/impression are saved first; the optional
        ``verdict`` (agree / disagree with ``verdict_label`` / not_assessable) is signed with them."""
        data = self._sign_body(request, pk)
        # A body with either key gives both texts (a missing one is empty); none: sign what is stored.
        text = ({k: data[k] for k in ("findings", "impression")} if {"findings", "impression"} & set(request.data)
                else {})
        verdict = {k: data[k] for k in ("verdict", "verdict_label")} if "verdict" in data else {}
        return self._act(request, pk, services.sign_report, ip_address=client_ip(request), **text, **verdict)

    @extend_schema(request=SignSerializer, responses=ReportDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=[IsRadiologist])
    def review(self, request, pk=None):
        """Save findings and impression (and a draft verdict) without signing (radiologist only)."""
        data = self._sign_body(request, pk)
        verdict = {k: data[k] for k in ("verdict", "verdict_label")} if "verdict" in data else {}
        return self._act(request, pk, services.update_review, data["findings"], data["impression"],
                         ip_address=client_ip(request), **verdict)

    @extend_schema(request=ReviewSerializer, responses={201: ReportDetailSerializer})
    @action(detail=True, methods=["post"], permission_classes=[IsRadiologist])
    def amend(self, request, pk=None):
        """Amend a signed report: a new signed version; the old one is kept."""
        body = ReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        response = self._act(request, pk, services.amend_report, body.validated_data["findings"],
                             body.validated_data["impression"], ip_address=client_ip(request))
        response.status_code = status.HTTP_201_CREATED
        return response

    @extend_schema(request=None, responses={202: ReportDetailSerializer})
    @action(detail=True, methods=["post"])
    def explanation(self, request, pk=None):
        """Ask for a new LLM explanation; the old text stays until the new one arrives."""
        response = self._act(request, pk, services.regenerate_explanation)
        response.status_code = status.HTTP_202_ACCEPTED
        return response

    @extend_schema(request=DetailRequestSerializer, responses={202: ReportDetailSerializer})
    @action(detail=True, methods=["post"], url_path="detail")
    def request_detail(self, request, pk=None):
        """Queue saliency and the faithfulness check for some slices (``scans``: ids) or all."""
        body = DetailRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        response = self._act(request, pk, services.request_detail, body.validated_data.get("scans"),
                             ip_address=client_ip(request))
        response.status_code = status.HTTP_202_ACCEPTED
        return response


class AnalyticsView(APIView):
    """The reviewer analytics (radiologists and admins), audited; the same figures as /analytics/."""

    permission_classes = [CanViewAnalytics]

    @extend_schema(parameters=[AnalyticsFilterSerializer], responses={200: AnalyticsSerializer},
                   description="Per model (name + version) and per AI label, over the current signed versions "
                               "whose signature falls in the range: verdict counts, agreement rate, the confusion "
                               "of AI label against the radiologist's label, calibration of the AI confidence "
                               "against agreement (bins and ECE), and seconds from ready to signed (median, p90). "
                               "No patient data (docs/operations.md, \"Reviewer feedback\").")
    def get(self, request):
        query = AnalyticsFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(services.view_analytics(request.user, via=Via.API, ip_address=client_ip(request),
                                                **query.validated_data))
