"""DICOMweb: STOW-RS (``POST /dicomweb/studies``) and a minimal QIDO-RS (``GET /dicomweb/studies``).

Same authentication and roles as the API (token or session; the clinic roles). STOW-RS
takes ``multipart/related; type="application/dicom"``, stores the instances as one upload
through ``register_upload`` (``via=dicomweb``) and answers the Store Instances Response
(PS3.18 10.5.3) in DICOM JSON: referenced instances, and failed ones with their Failure
Reason. QIDO-RS lists the studies we hold, filtered by PatientID or StudyInstanceUID, and
records the read like the API study list (the answer names patients).
"""
from __future__ import annotations

import io
import re

import pydicom
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from scans import selectors, services
from scans.api.views import InsufficientStorage
from scans.models import AuditAction, Via
from scans.services.dicom_inbox import ACCEPTED_SOP_CLASSES
from scans.views.common import client_ip

# Failure Reason (0008,1197) values, PS3.18 Table I.2-2 / PS3.7 C.
PROCESSING_FAILURE = 0x0110
DUPLICATE_INSTANCE = 0x0111
SOP_CLASS_NOT_SUPPORTED = 0x0122
NOT_AUTHORIZED = 0x0124
CANNOT_UNDERSTAND = 0xC000


class DicomJSONRenderer(JSONRenderer):
    media_type = "application/dicom+json"


class MultipartRelatedParser(BaseParser):
    """``multipart/related`` bodies -> the list of their parts' ``(content type, bytes)``."""

    media_type = "multipart/related"

    def parse(self, stream, media_type=None, parser_context=None):
        boundary = re.search(r'boundary="?([^";]+)"?', media_type or "")
        if not boundary:
            raise ParseError("multipart/related needs a boundary")
        return split_parts(stream.read(), boundary.group(1).encode())


def split_parts(body: bytes, boundary: bytes) -> list[tuple[str, bytes]]:
    """The parts of a multipart body (RFC 2046), byte for byte."""
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = dict(line.split(b":", 1) for line in head.split(b"\r\n") if b":" in line)
        content_type = {k.strip().lower(): v.strip() for k, v in headers.items()}.get(b"content-type", b"")
        parts.append((content_type.decode("latin-1").lower(), data[:-2] if data.endswith(b"\r\n") else data))
    return parts


def _uid(tag: str, value: str) -> dict:
    return {tag: {"vr": "UI", "Value": [value]}} if value else {tag: {"vr": "UI"}}


def _instance(sop_class: str, sop_uid: str, reason: int | None = None) -> dict:
    item = {**_uid("00081150", sop_class), **_uid("00081155", sop_uid)}
    if reason is not None:
        item["00081197"] = {"vr": "US", "Value": [reason]}
    return item


def _reason_code(text: str) -> int:
    if text.startswith("duplicate"):
        return DUPLICATE_INSTANCE
    if "signed" in text:
        return NOT_AUTHORIZED
    if "read" in text or "empty" in text:
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE


class _Part:
    """A received instance as register_upload reads it (``.name``, ``.read()``)."""

    def __init__(self, name: str, data: bytes):
        self.name, self.data = name, data

    def read(self) -> bytes:
        return self.data


class StudiesView(APIView):
    parser_classes = [MultipartRelatedParser]
    renderer_classes = [DicomJSONRenderer, JSONRenderer]

    @extend_schema(
        summary="STOW-RS: store instances",
        request={"multipart/related": OpenApiTypes.BINARY},
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="every instance stored"),
                   202: OpenApiResponse(OpenApiTypes.OBJECT, description="some failed (Failed SOP Sequence)"),
                   409: OpenApiResponse(OpenApiTypes.OBJECT, description="none stored"),
                   415: OpenApiResponse(description="not multipart/related; type=application/dicom")},
        description="multipart/related; type=\"application/dicom\", one DICOM file per part. Answers the "
                    "Store Instances Response in DICOM JSON: Referenced SOP Sequence (0008,1199) and Failed "
                    "SOP Sequence (0008,1198) with each Failure Reason (0008,1197). The study is analysed "
                    "as an upload is.")
    def post(self, request):
        if 'type="application/dicom"' not in request.content_type.replace("'", '"') and \
                "type=application/dicom" not in request.content_type:
            raise UnsupportedMediaType(request.content_type)
        parts = request.data if isinstance(request.data, list) else []
        failed, files, known = [], [], {}
        for index, (content_type, data) in enumerate(parts):
            try:
                ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
                sop_class, sop_uid = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
            except Exception:  # not a DICOM file we can read
                failed.append(_instance("", "", CANNOT_UNDERSTAND))
                continue
            if content_type.split(";")[0] != "application/dicom" or sop_class not in ACCEPTED_SOP_CLASSES:
                failed.append(_instance(sop_class, sop_uid, SOP_CLASS_NOT_SUPPORTED))
                continue
            name = f"stow-{index + 1}-{sop_uid}.dcm"  # intake keeps the base name only
            known[name] = (sop_class, sop_uid)
            files.append(_Part(name, data))
        stored = []
        if files:
            try:
                result = services.register_upload(request.user, files, via=Via.DICOMWEB)
            except services.StorageUnavailable as exc:  # nothing was stored: the sender retries
                raise InsufficientStorage(str(exc)) from None
            rejected = {r["name"]: r["reason"] for r in result.upload.rejected}
            for name, (sop_class, sop_uid) in known.items():
                if name in rejected:
                    failed.append(_instance(sop_class, sop_uid, _reason_code(rejected[name])))
                else:
                    stored.append(_instance(sop_class, sop_uid))
        body = {}
        if stored:
            body["00081199"] = {"vr": "SQ", "Value": stored}
        if failed:
            body["00081198"] = {"vr": "SQ", "Value": failed}
        code = status.HTTP_200_OK if not failed else status.HTTP_202_ACCEPTED if stored else status.HTTP_409_CONFLICT
        return Response(body, status=code)

    @extend_schema(
        summary="QIDO-RS: search for studies",
        parameters=[OpenApiParameter("PatientID", str, description="exact patient ID"),
                    OpenApiParameter("StudyInstanceUID", str, description="exact Study Instance UID"),
                    OpenApiParameter("limit", int, description="at most this many studies (default 200, at most 1000)")],
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="a list of study results (DICOM JSON)")},
    )
    def get(self, request):
        params = request.query_params
        limit = params.get("limit") or "200"
        if not limit.isdigit():
            raise ParseError("limit must be a whole number")
        rows = list(selectors.dicomweb_studies(patient_id=params.get("PatientID") or params.get("00100020"),
                                               study_uid=params.get("StudyInstanceUID") or params.get("0020000D"))
                    [:min(int(limit), 1000)])
        services.record_read(AuditAction.LIST_STUDIES, request.user, via=Via.DICOMWEB,
                             ip_address=client_ip(request), ids=[s.pk for s in rows])
        return Response([_study_json(s) for s in rows])


def _study_json(study) -> dict:
    """One QIDO-RS study result (PS3.18 Table 10.6.3-3 attributes that we hold)."""
    out = {
        **_uid("0020000D", study.study_instance_uid),
        "00100020": {"vr": "LO", "Value": [study.patient.patient_id]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": study.patient.name.replace(", ", "^")}]}
        if study.patient.name else {"vr": "PN"},
        "00081030": {"vr": "LO", "Value": [study.description]} if study.description else {"vr": "LO"},
        "00080061": {"vr": "CS", "Value": [study.modality]} if study.modality else {"vr": "CS"},
        "00201206": {"vr": "IS", "Value": [study.n_series]},
        "00201208": {"vr": "IS", "Value": [study.n_instances]},
    }
    out["00080020"] = {"vr": "DA", "Value": [study.study_date.strftime("%Y%m%d")]} if study.study_date else {"vr": "DA"}
    return out
