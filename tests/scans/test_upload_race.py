"""Two uploads at the same moment, through a live server: one stored, the other reported
as a duplicate, never a 500. Runs on the suite's database: SQLite here (IMMEDIATE
transactions serialise the writers), PostgreSQL in CI (DATABASE_URL).
"""
from __future__ import annotations

import logging
import threading

import httpx
import pytest

from scans.models import Patient, Scan, Study, Upload
from tests import builders as b

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 6


def _post_together(url: str, token: str, bodies: list[tuple[dict, list]]) -> list[httpx.Response]:
    """POST every (data, files) body from its own thread, released at the same instant."""
    barrier = threading.Barrier(len(bodies))
    answers: list[httpx.Response | Exception] = [None] * len(bodies)

    def post(i, data, files):
        with httpx.Client(timeout=60, headers={"Authorization": f"Token {token}"}) as client:
            barrier.wait()
            try:
                answers[i] = client.post(url, data=data, files=files)
            except Exception as exc:  # reported below, with the others
                answers[i] = exc

    threads = [threading.Thread(target=post, args=(i, *body)) for i, body in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [a for a in answers if isinstance(a, Exception)], answers
    return answers


@pytest.fixture
def api(live_server, staff_user):
    from rest_framework.authtoken.models import Token

    return f"{live_server.url}/api/v1/uploads/", Token.objects.get_or_create(user=staff_user)[0].key


def test_the_same_file_twice_at_once_is_stored_once_and_reported_once(api, caplog):
    url, token = api
    caplog.set_level(logging.INFO, logger="scans.services.uploads")
    for round_ in range(ROUNDS):
        data = b.png_bytes(seed=100 + round_)
        body = ({"patient_id": f"RACE-{round_}"}, [("files", (f"slice{round_}.png", data, "image/png"))])
        answers = _post_together(url, token, [body, body])

        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        results = sorted((a.json() for a in answers), key=lambda r: -r["accepted"])
        assert [r["accepted"] for r in results] == [1, 0], results
        assert "duplicate" in results[1]["rejected"][0]["reason"]
    assert Scan.objects.count() == ROUNDS and Upload.objects.count() == 2 * ROUNDS
    assert Study.objects.count() == ROUNDS
    print(f"races lost and retried: {caplog.text.count('raced a concurrent upload')} of {ROUNDS} rounds")


def test_two_uploads_for_a_new_patient_at_once_make_one_patient(api):
    url, token = api
    for round_ in range(ROUNDS):
        bodies = [({"patient_id": f"NEW-{round_}"},
                   [("files", (f"s{k}.png", b.png_bytes(seed=200 + 2 * round_ + k), "image/png"))]) for k in (0, 1)]
        answers = _post_together(url, token, bodies)
        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        assert [a.json()["accepted"] for a in answers] == [1, 1]
    assert Patient.objects.filter(patient_id__startswith="NEW-").count() == ROUNDS
    assert Scan.objects.count() == 2 * ROUNDS


def test_the_same_dicom_study_from_two_uploads_at_once_joins_one_study(api):
    url, token = api
    uid = "1.2.826.0.1.3680043.8.498.77"
    bodies = [({}, [("files", (f"i{k}.dcm", b.dicom_bytes(patient_id="RACE-DCM", study_uid=uid, instance_number=k + 1, seed=k,
                                                          sop_uid=f"{uid}.{k + 1}"), "application/dicom"))])
              for k in (0, 1)]
    answers = _post_together(url, token, bodies)
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert Study.objects.filter(study_instance_uid=uid).count() == 1
    assert Scan.objects.filter(study__study_instance_uid=uid).count() == 2
