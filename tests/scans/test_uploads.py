"""register_upload: every file is accepted or rejected with a reason; nothing is dropped."""
from __future__ import annotations

import io
import zipfile

import pytest

from scans import services
from scans.models import Patient, Report, ReportStatus, Scan, Series, Study
from tests import builders as b

pytestmark = pytest.mark.django_db


def _upload(user, files: dict[str, bytes], **fields):
    return services.register_upload(user, [b.upload(n, d) for n, d in files.items()], fields)


def _reasons(result) -> dict[str, str]:
    return {r["name"]: r["reason"] for r in result.rejected}


def test_it_accepts_a_single_image_for_the_given_patient(staff_user):
    result = _upload(staff_user, {"head.jpg": b.jpeg_bytes()}, patient_id="P-1", patient_name="Ann Example",
                     study_description="MRI head")

    assert result.accepted == 1 and result.rejected == []
    study = result.studies[0]
    assert study.patient.patient_id == "P-1" and study.patient.name == "Ann Example"
    assert study.description == "MRI head"
    scan = study.scans.get()
    assert scan.status == "pending" and scan.rows == 128 and scan.image.name.endswith(".png")
    assert Report.objects.get(study=study).status == ReportStatus.PROCESSING


def test_many_images_of_one_patient_make_one_study_in_order(staff_user):
    result = _upload(staff_user, {f"s{i}.png": b.png_bytes(seed=i) for i in range(4)}, patient_id="P-2")

    assert result.accepted == 4
    assert len(result.studies) == 1
    assert list(result.studies[0].scans.values_list("instance_number", flat=True)) == [1, 2, 3, 4]


def test_dicom_files_are_grouped_by_study_and_series_with_the_patient_from_the_tags(staff_user):
    files = {
        "a1.dcm": b.dicom_bytes(study_uid="1.2.3.1", series_uid="1.2.3.1.1", sop_uid="1.2.3.1.1.1", seed=1),
        "a2.dcm": b.dicom_bytes(study_uid="1.2.3.1", series_uid="1.2.3.1.2", sop_uid="1.2.3.1.2.1", seed=2),
        "b1.dcm": b.dicom_bytes(study_uid="1.2.3.2", series_uid="1.2.3.2.1", sop_uid="1.2.3.2.1.1", seed=3,
                                patient_id="P-OTHER", patient_name="Doe^Jane^M"),
    }
    result = _upload(staff_user, files)

    assert result.accepted == 3 and result.rejected == []
    by_uid = {s.study_instance_uid: s for s in result.studies}
    assert set(by_uid) == {"1.2.3.1", "1.2.3.2"}
    assert by_uid["1.2.3.1"].series.count() == 2
    patient = Patient.objects.get(patient_id="P-OTHER")
    assert patient.name == "Doe, Jane M" and patient.sex == "F" and str(patient.birth_date) == "1970-01-02"
    assert by_uid["1.2.3.1"].modality == "MR" and str(by_uid["1.2.3.1"].study_date) == "2026-01-01"


def test_a_multi_frame_dicom_gives_one_scan_per_frame(staff_user):
    result = _upload(staff_user, {"cine.dcm": b.dicom_bytes(frames=3)})

    scans = list(result.studies[0].scans.order_by("frame_index"))
    assert [s.frame_index for s in scans] == [0, 1, 2]
    assert len({s.source.name for s in scans}) == 1  # the file is stored once
    assert result.accepted == 1


def test_a_zip_with_a_manifest_maps_images_to_patients_and_studies(staff_user):
    manifest = (b"file,patient_id,patient_name,patient_birth_date,study,study_description\n"
                b"a/one.png,M-1,Ann,1980-05-06,s1,Head MRI\n"
                b"a/two.png,M-1,Ann,1980-05-06,s1,Head MRI\n"
                b"three.png,M-2,Bob,,s9,Follow-up\n")
    archive = b.zip_bytes({"manifest.csv": manifest, "a/one.png": b.png_bytes(1), "a/two.png": b.png_bytes(2),
                           "three.png": b.png_bytes(3)})
    result = _upload(staff_user, {"batch.zip": archive})

    assert result.accepted == 3, result.rejected
    studies = {s.patient.patient_id: s for s in result.studies}
    assert studies["M-1"].scans.count() == 2 and studies["M-1"].description == "Head MRI"
    assert str(studies["M-1"].patient.birth_date) == "1980-05-06"
    assert studies["M-2"].description == "Follow-up"


def test_a_zip_of_a_dicom_study_is_read_like_loose_files(staff_user):
    archive = b.zip_bytes({f"DICOM/IM{i}": b.dicom_bytes(sop_uid=f"1.9.{i}", instance_number=i, seed=i)
                           for i in range(1, 4)})
    result = _upload(staff_user, {"study.zip": archive})

    assert result.accepted == 3 and len(result.studies) == 1
    assert list(result.studies[0].scans.values_list("instance_number", flat=True)) == [1, 2, 3]


def test_manifest_problems_are_reported_per_file(staff_user):
    manifest = b"file,patient_id,patient_birth_date\nok.png,M-3,\nbad.png,M-3,yesterday\nghost.png,M-3,\n"
    archive = b.zip_bytes({"manifest.csv": manifest, "ok.png": b.png_bytes(1), "bad.png": b.png_bytes(2)})
    result = _upload(staff_user, {"x.zip": archive})

    reasons = _reasons(result)
    assert result.accepted == 1
    assert "not a date" in reasons["x.zip/bad.png"]
    assert reasons["manifest.csv line 4"] == "names a file that is not in the upload"


def test_a_manifest_without_the_needed_columns_is_rejected(staff_user):
    archive = b.zip_bytes({"manifest.csv": b"name,who\nx.png,1\n", "x.png": b.png_bytes(1)})
    result = _upload(staff_user, {"x.zip": archive})

    reasons = _reasons(result)
    assert "needs the columns" in reasons["x.zip/manifest.csv"]
    assert "no patient" in reasons["x.zip/x.png"]


def test_duplicates_are_detected_by_content_and_by_sop_instance_uid(staff_user):
    first = _upload(staff_user, {"a.png": b.png_bytes(7), "a-copy.png": b.png_bytes(7),
                                 "s.dcm": b.dicom_bytes(sop_uid="1.5.1", seed=1)}, patient_id="P-3")
    again = _upload(staff_user, {"a-again.png": b.png_bytes(7),
                                 "s-recoded.dcm": b.dicom_bytes(sop_uid="1.5.1", seed=2)}, patient_id="P-3")

    assert "same content as a.png" in _reasons(first)["a-copy.png"]
    reasons = _reasons(again)
    assert reasons["a-again.png"].startswith("duplicate: the same file is already in study")
    assert "SOP Instance UID" in reasons["s-recoded.dcm"]
    assert again.accepted == 0
    assert Scan.objects.count() == 2


def test_unreadable_files_are_rejected_with_a_reason_a_person_understands(staff_user):
    result = _upload(staff_user, {"notes.txt": b"hello", "empty.png": b"", "cut.jpg": b.jpeg_bytes()[:200],
                                  "ok.jpg": b.jpeg_bytes()}, patient_id="P-4")

    reasons = _reasons(result)
    assert result.accepted == 1
    assert "not a readable image" in reasons["notes.txt"]
    assert reasons["empty.png"] == "file is empty"
    assert reasons["cut.jpg"]


def test_an_image_without_a_patient_is_rejected(staff_user):
    result = _upload(staff_user, {"orphan.png": b.png_bytes()})

    assert result.accepted == 0 and result.studies == []
    assert "patient_id" in _reasons(result)["orphan.png"]


def test_every_file_is_accounted_for(staff_user):
    files = {"a.png": b.png_bytes(1), "b.png": b.png_bytes(1), "c.txt": b"x",
             "d.zip": b.zip_bytes({"e.png": b.png_bytes(2), "__MACOSX/._e.png": b"junk", "../f.png": b.png_bytes(3)})}
    result = _upload(staff_user, files, patient_id="P-5")

    names = {"a.png", "b.png", "c.txt", "d.zip/e.png", "d.zip/__MACOSX/._e.png", "d.zip/../f.png"}
    accepted = {s.original_name for s in Scan.objects.all()}
    assert accepted | set(_reasons(result)) == names
    assert result.upload.accepted == result.accepted == 2


class TestZipGuards:
    def test_path_traversal_members_are_refused(self, staff_user):
        result = _upload(staff_user, {"t.zip": b.zip_bytes({"../../etc/x.png": b.png_bytes(), "/abs.png": b.png_bytes(1)})},
                         patient_id="P-6")
        assert all("unsafe path" in r for r in _reasons(result).values()) and len(result.rejected) == 2

    def test_a_zip_bomb_is_refused_by_its_compression_ratio(self, staff_user, settings):
        bomb = b.zip_bytes({"bomb.png": b"\0" * (20 * 1024 * 1024)})
        result = _upload(staff_user, {"bomb.zip": bomb}, patient_id="P-7")
        assert "zip bomb" in _reasons(result)["bomb.zip/bomb.png"]

    def test_nesting_deeper_than_allowed_is_refused(self, staff_user, settings):
        settings.BRAINAI_ZIP_MAX_DEPTH = 1
        inner = b.zip_bytes({"deep.png": b.png_bytes(1)})
        middle = b.zip_bytes({"inner.zip": inner, "ok.png": b.png_bytes(2)})
        result = _upload(staff_user, {"outer.zip": middle}, patient_id="P-8")
        assert result.accepted == 1
        assert "nested" in _reasons(result)["outer.zip/inner.zip"]

    def test_encrypted_members_are_refused(self, staff_user):
        data = bytearray(b.zip_bytes({"secret.png": b.png_bytes()}))
        # Set the "encrypted" flag bit in the local and the central header (zipfile cannot write it).
        data[6] |= 0x1
        central = data.index(b"PK\x01\x02")
        data[central + 8] |= 0x1
        result = _upload(staff_user, {"enc.zip": bytes(data)}, patient_id="P-9")
        assert "encrypted" in _reasons(result)["enc.zip/secret.png"]

    def test_too_many_members_are_refused(self, staff_user, settings):
        settings.BRAINAI_ZIP_MAX_MEMBERS = 2
        result = _upload(staff_user, {"many.zip": b.zip_bytes({f"{i}.png": b.png_bytes(i) for i in range(3)})},
                         patient_id="P-10")
        assert result.accepted == 2 and "more than 2 files" in _reasons(result)["many.zip/2.png"]

    def test_a_damaged_zip_is_refused(self, staff_user):
        result = _upload(staff_user, {"broken.zip": b"PK\x03\x04garbage"}, patient_id="P-11")
        assert "damaged" in _reasons(result)["broken.zip"]


def test_new_images_for_a_signed_study_are_refused(staff_user, radiologist):
    first = _upload(staff_user, {"s.dcm": b.dicom_bytes(sop_uid="1.6.1")})
    report = b.explain_and_finalize(b.analyse_study(first.studies[0]))
    services.sign_report(report, radiologist)

    later = _upload(staff_user, {"s2.dcm": b.dicom_bytes(sop_uid="1.6.2", seed=5)})

    assert later.accepted == 0
    assert "already signed" in _reasons(later)["s2.dcm"]


def test_new_images_for_a_study_under_review_reopen_it(staff_user):
    first = _upload(staff_user, {"s.dcm": b.dicom_bytes(sop_uid="1.7.1")})
    study = first.studies[0]
    b.explain_and_finalize(b.analyse_study(study))

    _upload(staff_user, {"s2.dcm": b.dicom_bytes(sop_uid="1.7.2", seed=5)})

    study.refresh_from_db()
    report = Report.objects.get(study=study)
    assert study.status == "analyzing" and report.status == ReportStatus.PROCESSING and report.label == ""
    assert Series.objects.filter(study=study).count() == 1 and study.scans.count() == 2


def test_an_upload_is_audited_without_file_names(staff_user):
    from scans.models import AuditEvent

    _upload(staff_user, {"Smith_John_MRN123.png": b.png_bytes()}, patient_id="P-12")

    event = AuditEvent.objects.get(action="upload")
    assert event.actor == staff_user and event.detail["accepted"] == 1
    assert "Smith" not in str(event.detail)


def test_an_upload_over_the_size_limit_is_refused_by_name(staff_user, settings):
    settings.BRAINAI_UPLOAD_MAX_MB = 1
    big = b"\xff" * (1024 * 1024 + 1)
    result = _upload(staff_user, {"small.png": b.png_bytes(), "huge.jpg": big}, patient_id="P-13")
    assert result.accepted == 1 and "exceeds 1 MB" in _reasons(result)["huge.jpg"]
