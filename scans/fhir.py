"""A report version as a FHIR R4 DiagnosticReport, with its Observations and the model as
a Device (contained resources), and the ImagingStudy referenced by its study UID.

A signed version reads from its snapshot (through scans.services.results.result_parts),
never from the live rows. Shape and codes: docs/integration.md, "FHIR".
"""
from __future__ import annotations

from scans import snapshot
from scans.models import Label, Report, ReportStatus
from scans.services.results import result_parts

# Report status -> DiagnosticReport.status (and each Observation's).
STATUS = {
    ReportStatus.PROCESSING: "registered", ReportStatus.AWAITING_REVIEW: "preliminary",
    ReportStatus.SIGNED: "final", ReportStatus.AMENDED: "amended", ReportStatus.FAILED: "cancelled",
}
LABEL_SYSTEM = "urn:brainai:label"  # our labels (the SR's 99BRAINAI codes)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NOT_FOR_DIAGNOSIS = "AI-generated decision support; not for diagnostic use"


def _label(label: str) -> dict:
    display = dict(Label.choices).get(label, label)
    return {"coding": [{"system": LABEL_SYSTEM, "code": label, "display": display}], "text": display}


def _probabilities(probabilities: dict) -> list[dict]:
    return [{"code": {"coding": [{"system": LABEL_SYSTEM, "code": c}], "text": f"calibrated probability of {c}"},
             "valueQuantity": {"value": round(float(p), 6), "unit": "1", "system": UCUM, "code": "1"}}
            for c, p in sorted(probabilities.items())]


def _observation(oid: str, status: str, code_text: str, *, value=None, components=(), note="", focus=None) -> dict:
    obs = {"resourceType": "Observation", "id": oid, "status": status,
           "code": {"coding": [{"system": LOINC, "code": "59776-5", "display": "Procedure findings"}],
                    "text": code_text},
           "device": {"reference": "#model"}}
    if value is not None:
        obs["valueCodeableConcept"] = value
    if components:
        obs["component"] = list(components)
    if note:
        obs["note"] = [{"text": note}]
    if focus:
        obs["focus"] = [focus]
    return obs


def diagnostic_report(report: Report) -> dict:
    """The FHIR R4 DiagnosticReport (JSON-ready dict) of one report version."""
    study, result, _ = result_parts(report)
    report = Report.objects.select_related("study__patient", "signed_by").get(pk=report.pk)
    snapshot.apply(report)  # a signed version: the values it was signed with
    status = STATUS[report.status]
    imaging_study = {"type": "ImagingStudy",
                     "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study['study_instance_uid']}"}}
    device = {"resourceType": "Device", "id": "model", "manufacturer": "BrainAI",
              "deviceName": [{"name": result["model_name"] or "unknown", "type": "model-name"}],
              "version": [{"value": result["model_version"] or "unknown"}],
              "note": [{"text": NOT_FOR_DIAGNOSIS}]}
    observations = []
    if result["label"]:
        observations.append(_observation(
            "finding", status, "AI study finding", value=_label(result["label"]),
            components=_probabilities(report.probabilities or {}),
            note=" ".join(t for t in (result["evidence"], NOT_FOR_DIAGNOSIS) if t), focus=imaging_study))
    for i, series in enumerate(result["series"], start=1):
        observations.append(_observation(
            f"series-{i}", status, f"AI finding of series {series['number']}", value=_label(series["label"]),
            components=_probabilities(series["probabilities"]),
            note=f"series instance UID {series['series_instance_uid']}; the most suspicious slice's probabilities"))
    body = {
        "resourceType": "DiagnosticReport", "id": f"{report.pk}", "status": status,
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                                  "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "24590-2", "display": "MR Brain"}],
                 "text": "AI decision support for brain MRI (not for diagnostic use)"},
        "subject": {"identifier": {"value": report.study.patient.patient_id}},
        "issued": (report.signed_at or report.updated_at).isoformat(),
        "performer": [{"reference": "#model", "display": "BrainAI model"}],
        "imagingStudy": [imaging_study],
        "contained": [device, *observations],
        "result": [{"reference": f"#{o['id']}"} for o in observations],
        "extension": [{"url": "urn:brainai:report-version", "valueInteger": report.version}],
    }
    if report.study.study_date:
        body["effectiveDateTime"] = report.study.study_date.isoformat()
    if report.is_signed and report.signed_by is not None:
        body["resultsInterpreter"] = [{"display": report.signed_by.get_full_name() or report.signed_by.get_username()}]
    conclusion = report.impression if report.is_signed else ""
    body["conclusion"] = " ".join(t for t in (conclusion, NOT_FOR_DIAGNOSIS) if t)
    if result["label"]:
        body["conclusionCode"] = [_label(result["label"])]
    return body
