"""The study's result as a DICOM Comprehensive 3D SR holding a TID 1500 measurement report.

Content tree (docs/integration.md, "The SR's content tree"):

    Imaging Measurement Report (126000, DCM)                        TID 1500 root
      language, observer context: the model as a device observer
      procedure reported: MR Brain (24590-2, LN)
      Imaging Measurements (126010, DCM)
        group "study finding"                                        TID 1501
          Finding (121071, DCM) = the study label (99BRAINAI codes; indeterminate possible)
          algorithm: model name + version
          Comment (121106, DCM) TEXT = the evidence sentence
          Comment (121106, DCM) TEXT = "AI-generated decision support; not for diagnostic use"
        one group per analysed series                                TID 1501
          Finding (121071, DCM) = the series' most suspicious slice's label
          p(<class>) measurements, unit {probability} (UCUM "1"), calibrated
          algorithm: model name + version
          source images: the series' analysed SOP instances

The verification flag is UNVERIFIED before sign-off; after, VERIFIED with the signing
radiologist as verifying observer. An amendment names the SR it replaces in the
Predecessor Documents Sequence.

Input (plain dicts; no Django):
    study   {"study_instance_uid", "patient_id", "patient_name", "patient_birth_date",
             "patient_sex", "study_date", "study_time", "accession_number", "study_id",
             "referring_physician_name"}   the patient and study modules, as received
    result  {"label", "evidence", "model_name", "model_version", "version",
             "verified": bool, "signed_by": str | None, "signed_at": datetime | None,
             "series": [{"series_instance_uid", "number", "description", "label",
                         "probabilities": {class: p}, "instances":
                         [{"sop_class_uid", "sop_instance_uid"}]}]}
    target  {"series_instance_uid", "sop_instance_uid", "instance_number"}
    previous  {"series_instance_uid", "sop_instance_uid"} of the SR this one replaces, or None
"""
from __future__ import annotations

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

NOT_FOR_DIAGNOSIS = "AI-generated decision support; not for diagnostic use"
MANUFACTURER = "BrainAI"
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SCHEME = "99BRAINAI"  # a private coding scheme (PS3.16 8.2: "99" prefix): our labels
_FINDING = Code("121071", "DCM", "Finding")
_COMMENT = Code("121106", "DCM", "Comment")
_MR_BRAIN = Code("24590-2", "LN", "MR Brain")
_PROBABILITY_UNIT = Code("1", "UCUM", "no units")
_LABEL_MEANINGS = {
    "glioma": "Glioma", "meningioma": "Meningioma", "notumor": "No tumour", "pituitary": "Pituitary tumour",
    "not_brain_mri": "Not a brain MRI", "indeterminate": "Indeterminate: review",
}
# The device observer's UID is derived from this, so it is the same on every SR.
_DEVICE_ENTROPY = ["brainai-model-observer"]


def label_code(label: str) -> Code:
    """Our coded concept for a label (``99BRAINAI`` scheme)."""
    return Code(label, SCHEME, _LABEL_MEANINGS.get(label, label))


def probability_code(label: str) -> Code:
    """The concept name of a calibrated probability measurement for one class."""
    return Code(f"p-{label}", SCHEME, f"Calibrated probability of {_LABEL_MEANINGS.get(label, label)}")


def evidence_dataset(study: dict, series_uid: str, instance: dict) -> Dataset:
    """A header-only stand-in for a source instance: highdicom copies the patient and
    study modules from the first one and lists them all as evidence."""
    ds = Dataset()
    ds.StudyInstanceUID = study["study_instance_uid"]
    ds.SeriesInstanceUID = series_uid
    ds.SOPClassUID = instance["sop_class_uid"]
    ds.SOPInstanceUID = instance["sop_instance_uid"]
    ds.PatientID = study.get("patient_id") or ""
    ds.PatientName = study.get("patient_name") or ""
    ds.PatientBirthDate = study.get("patient_birth_date") or ""
    ds.PatientSex = study.get("patient_sex") or ""
    ds.StudyDate = study.get("study_date") or ""
    ds.StudyTime = study.get("study_time") or ""
    ds.AccessionNumber = study.get("accession_number") or ""
    ds.StudyID = study.get("study_id") or ""
    ds.ReferringPhysicianName = study.get("referring_physician_name") or ""
    return ds


def _text(value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=_COMMENT, value=value[:1024],
                                 relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)


def _group(name: str, label: str, algorithm, *, probabilities=None, sources=None, texts=()):
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=generate_uid(entropy_srcs=[name]), identifier=name[:64]),
        algorithm_id=algorithm,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(_FINDING, label_code(label))] if label else None,
        measurements=[hd.sr.Measurement(name=probability_code(c), value=float(p), unit=_PROBABILITY_UNIT,
                                        algorithm_id=algorithm)
                      for c, p in sorted((probabilities or {}).items())] or None,
        source_images=sources or None,
    )
    # TID 1501 allows further content; the texts go inside the group's container.
    for text in texts:
        group[0].ContentSequence.append(_text(text))
    return group


def build_sr(study: dict, result: dict, target: dict, previous: dict | None = None) -> Dataset:
    """The Comprehensive 3D SR of one report version (see the module docstring for shapes)."""
    algorithm = hd.sr.AlgorithmIdentification(name=result["model_name"] or "unknown",
                                              version=result["model_version"] or "unknown")
    evidence, groups = [], []
    for series in result["series"]:
        refs = [hd.sr.SourceImageForMeasurementGroup(i["sop_class_uid"], i["sop_instance_uid"])
                for i in series["instances"]]
        evidence += [evidence_dataset(study, series["series_instance_uid"], i) for i in series["instances"]]
        name = f"series {series['number']}" if series.get("number") is not None else f"series {series['series_instance_uid']}"
        groups.append(_group(name, series["label"], algorithm, probabilities=series["probabilities"], sources=refs))
    texts = [t for t in (result.get("evidence"), NOT_FOR_DIAGNOSIS) if t]
    groups.insert(0, _group("study finding", result["label"], algorithm, texts=texts))
    if not evidence:  # images without DICOM headers: the study alone
        evidence = [evidence_dataset(study, target["series_instance_uid"],
                                     {"sop_class_uid": "1.2.840.10008.5.1.4.1.1.7", "sop_instance_uid": target["sop_instance_uid"]})]
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=_DEVICE_ENTROPY), name=f"{result['model_name']} {result['model_version']}"[:64],
            manufacturer_name=MANUFACTURER, model_name=(result["model_name"] or "unknown")[:64]))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=_MR_BRAIN, imaging_measurements=groups)
    previous_ds = None
    if previous:
        previous_ds = [evidence_dataset(study, previous["series_instance_uid"], {
            "sop_class_uid": COMPREHENSIVE_3D_SR, "sop_instance_uid": previous["sop_instance_uid"]})]
    verified = bool(result.get("verified"))
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report, series_instance_uid=target["series_instance_uid"], series_number=900,
        sop_instance_uid=target["sop_instance_uid"], instance_number=target["instance_number"],
        manufacturer=MANUFACTURER, is_complete=True, is_final=verified, is_verified=verified,
        verifying_observer_name=(result.get("signed_by") or None) if verified else None,
        verifying_organization="BrainAI clinic" if verified else None,
        previous_versions=previous_ds, record_evidence=bool(result["series"]),
    )
    sr.SeriesDescription = f"BrainAI result v{result['version']} ({'verified' if verified else 'unverified'}), not for diagnostic use"
    if verified and result.get("signed_at") is not None:
        sr.VerifyingObserverSequence[0].VerificationDateTime = result["signed_at"].strftime("%Y%m%d%H%M%S")
    return sr
