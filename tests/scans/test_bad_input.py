"""The bad-input corpus (tests/bad_input.py) through the real upload API, one request a case.

Every file is accepted and stored, or rejected with its reason; no answer is a 500; the
request's Python heap peak is measured (tracemalloc) and bounded; and every file the
request opens for writing, creates, renames or links lies under MEDIA_ROOT (a Python
audit hook sees each one). The worker's side is tests/e2e/test_bad_input_e2e.py; the
memory of the whole process per case, ``python -m bench.bad_input`` (run here too).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from django.conf import settings

from scans.models import Patient, Scan, Study
from tests import bad_input as corpus
from tests.bad_input import ACCEPTED

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
REQUEST_HEAP_LIMIT_MB = 256  # generous: the largest case peaks at a few MB (docs/operations.md)
PROCESS_GROWTH_LIMIT_MB = 512

# --- every path the process writes to, while a request runs -----------------------------

_WRITE_EVENTS = {"os.rename", "os.replace", "os.link", "os.symlink", "os.mkdir", "os.truncate", "shutil.move",
                 "shutil.copyfile", "os.chmod"}
_recording: list[list[str]] = []


def _audit(event: str, args: tuple) -> None:
    if not _recording:
        return
    if event == "open":
        path, mode, flags = args
        writes = (mode and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writes and isinstance(path, (str, bytes, os.PathLike)):
            _recording[-1].append(os.fsdecode(path))
    elif event in _WRITE_EVENTS:
        _recording[-1].extend(os.fsdecode(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike)))


sys.addaudithook(_audit)  # hooks cannot be removed; it records only while _recording holds a list


def _outside_media(paths: list[str]) -> list[str]:
    """Paths neither under MEDIA_ROOT nor Django's own spooled upload files in the temp dir."""
    media = Path(settings.MEDIA_ROOT).resolve()
    temp = Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir()).resolve()
    bad = []
    for raw in paths:
        path = Path(raw).resolve()
        spooled = path.parent == temp and ".upload" in path.name  # TemporaryUploadedFile
        if not (path.is_relative_to(media) or spooled):
            bad.append(raw)
    return bad


def _post(client, case):
    files = [_named(name, data) for name, data in case.files]
    _recording.append([])
    tracemalloc.start()
    try:
        response = client.post("/api/v1/uploads/", {"files": files, **case.fields}, format="multipart")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        written = _recording.pop()
    return response, peak, written


def _named(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


@pytest.mark.parametrize("case", corpus.corpus(), ids=lambda c: c.key)
def test_each_file_is_stored_or_rejected_with_a_reason_and_nothing_lands_outside_media(case, staff_api):
    response, peak, written = _post(staff_api, case)

    print(f"\n{case.key}: HTTP {response.status_code}, request heap peak {peak / 2**20:.1f} MiB, "
          f"{len(written)} files written")
    assert response.status_code == 202, response.content[:500]
    body = response.json()
    rejected = {r["name"]: r["reason"] for r in body["rejected"]}
    stored = {s.original_name: s for s in Scan.objects.filter(study__in=[s["id"] for s in body["studies"]])}
    assert set(stored) | set(rejected) == set(case.expect), "every file must be accounted for, by its name"
    for name, expected in case.expect.items():
        if expected == ACCEPTED:
            assert name in stored, f"{name!r} was refused: {rejected.get(name)}"
        else:
            assert expected in rejected.get(name, ""), f"{name!r}: expected a reason with {expected!r}, got " \
                                                       f"{rejected.get(name) or 'accepted'}"
    assert Scan.objects.count() == case.scans and body["accepted"] == len(stored)
    assert peak < REQUEST_HEAP_LIMIT_MB * 2**20, f"the request peaked at {peak / 2**20:.0f} MiB of Python heap"
    assert _outside_media(written) == [], "the upload wrote outside MEDIA_ROOT"
    media = Path(settings.MEDIA_ROOT).resolve()
    for scan in Scan.objects.all():
        assert Path(scan.source.path).resolve().is_relative_to(media) and Path(scan.source.path).is_file()


def test_zip_slip_names_land_nowhere(staff_api):
    case = next(c for c in corpus.corpus() if c.key == "zip-slip")
    _post(staff_api, case)
    media = Path(settings.MEDIA_ROOT).resolve()
    # Where the names would land if anything joined them to a folder: the media folder's
    # ancestors, the working directory, the repository, the temp dir and the file system root.
    places = {*media.parents, media, Path.cwd(), ROOT, Path(tempfile.gettempdir()), Path("/")}
    landed = [p for place in places if place.is_dir() for p in place.glob(f"{corpus.SLIP_MARK}*")]
    landed += [p for p in media.rglob(f"*{corpus.SLIP_MARK}*")]
    assert landed == []


def test_hostile_names_are_stored_verbatim_and_escaped_in_every_page(staff_api, staff_user, client):
    for key in ("hostile-names", "hostile-dicom"):
        assert _post(staff_api, next(c for c in corpus.corpus() if c.key == key))[0].status_code == 202
    names = " | ".join(Patient.objects.values_list("name", flat=True))  # "Family, Given Middle"
    assert "<script>window.__pwned=1</script>Zoë" in names and "王 Ωmega" in names, names
    assert "<script>Object.assign(window,{__pwned:4})</script>" in names and "Ærøskøbing José" in names, names
    assert {s.description for s in Study.objects.all()} >= {corpus.XSS_DESCRIPTION, corpus.XSS_DICOM_DESCRIPTION}
    assert {s.original_name for s in Scan.objects.all()} == {corpus.XSS_FILE, corpus.HOSTILE_DICOM_FILE}

    client.force_login(staff_user)
    pages = ["/", *(f"/studies/{s.pk}/" for s in Study.objects.all())]
    escaped = ""
    for url in pages:
        html = client.get(url).content.decode()
        for tag in ("<script>window", "<script>Object", "<img src=x", "<svg onload", "<b onmouseover"):
            assert tag not in html, f"{tag!r} reached {url} unescaped"
        escaped += html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;Zoë" in escaped  # shown, as text
    api = json.dumps([staff_api.get(f"/api/v1/studies/{s.pk}/").json() for s in Study.objects.all()],
                     ensure_ascii=False)
    assert "Ærøskøbing" in api and "МРТ головы" in api  # Unicode survives the round trip


def test_the_memory_of_each_case_is_bounded_in_a_fresh_process():
    """``python -m bench.bad_input --json``: the process's peak RSS and each request's heap peak."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    run = subprocess.run([sys.executable, "-m", "bench.bad_input", "--json"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(run.stdout)
    assert result["status_5xx"] == 0 and len(result["cases"]) == len(corpus.corpus())
    assert result["rss_growth_mib"] < PROCESS_GROWTH_LIMIT_MB
    assert max(c["heap_peak_mib"] for c in result["cases"]) < REQUEST_HEAP_LIMIT_MB
