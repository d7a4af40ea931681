"""read_upload: plain (name, bytes) files in, prepared items and rejections out, no database.

No django_db mark here: a query from the reader fails these tests.
"""
from __future__ import annotations

from scans.services.intake import IncomingFile, read_upload
from tests import builders as b


def test_it_reads_plain_name_and_bytes_pairs_without_a_database():
    read = read_upload([("head.png", b.png_bytes(1)), IncomingFile("notes.txt", b"not an image")],
                       {"patient_id": "P-9", "patient_sex": "female", "unknown": "ignored"})

    assert [item.name for item in read.items] == ["head.png"]
    assert read.items[0].patient["patient_id"] == "P-9" and read.items[0].patient["sex"] == "F"
    assert [r.name for r in read.rejected] == ["notes.txt"]


def test_it_takes_patient_and_grouping_from_the_dicom_tags():
    read = read_upload([("s1.dcm", b.dicom_bytes(patient_id="P-DCM-7", patient_name="Doe^Jane"))])

    item = read.items[0]
    assert item.is_dicom and item.patient["name"] == "Doe, Jane"
    assert item.study_key == item.study["uid"] and item.sop_instance_uid


def test_repeats_within_the_upload_are_refused_while_reading():
    png = b.png_bytes(3)
    read = read_upload([("a.png", png), ("a-copy.png", png)], {"patient_id": "P-1"})

    assert [item.name for item in read.items] == ["a.png"]
    assert read.rejected[0].name == "a-copy.png" and "same content as a.png" in read.rejected[0].reason
