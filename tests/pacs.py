"""A real PACS for the tests: Debian's Orthanc on loopback, with its own storage and config.

``start_orthanc(tmp)`` writes a JSON config (free HTTP and DICOM ports, AE ``TESTPACS``,
storage under ``tmp``, the DICOMweb plugin, and only our AE ``BRAINAI`` allowed to
store), starts ``Orthanc`` and waits for its REST API. The binary comes from
scripts/install-test-tools.sh; a missing binary fails the test, it never skips.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.broker import free_port

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
AE_TITLE = "TESTPACS"


@dataclass
class Orthanc:
    """A running Orthanc: its ports, its REST API (``get``) and its process."""

    http_port: int
    dicom_port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def stow_url(self) -> str:
        return f"{self.url}/dicom-web/studies"

    def get(self, path: str):
        response = httpx.get(self.url + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def instances_of_study(self, study_uid: str) -> list[dict]:
        """Every instance Orthanc holds in the study, with its main DICOM tags."""
        found = httpx.post(f"{self.url}/tools/find", timeout=10,
                           json={"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True})
        found.raise_for_status()
        return found.json()

    def file(self, orthanc_id: str) -> bytes:
        return httpx.get(f"{self.url}/instances/{orthanc_id}/file", timeout=10).content

    def file_of(self, sop_instance_uid: str) -> bytes:
        """The stored file of the one instance with this SOP Instance UID."""
        found = httpx.post(f"{self.url}/tools/find", timeout=10,
                           json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid}})
        found.raise_for_status()
        (orthanc_id,) = found.json()
        return self.file(orthanc_id)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_orthanc(root: Path, *, allowed_ae: str = "BRAINAI") -> Orthanc:
    """Start Orthanc under ``root`` (config, storage, log); fails the test if it cannot."""
    if not os.access(ORTHANC, os.X_OK) or not Path(DICOMWEB_PLUGIN).exists():
        pytest.fail(f"{ORTHANC} or its DICOMweb plugin is missing: run scripts/install-test-tools.sh "
                    "(Debian packages orthanc, orthanc-dicomweb)")
    http_port, dicom_port = free_port(), free_port()
    storage = root / "orthanc-storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "brainai-test-pacs", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": AE_TITLE,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "HttpServerEnabled": True,
        "DicomServerEnabled": True, "DicomCheckCalledAet": True,
        # Only our AE may store (from any loopback port); anything else is refused.
        "DicomAlwaysAllowStore": False, "DicomCheckModalityHost": False,
        "DicomModalities": {"brainai": [allowed_ae, "127.0.0.1", free_port()]},
        "Plugins": [DICOMWEB_PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StableAge": 1, "SaveJobs": False,
    }
    path = root / "orthanc.json"
    path.write_text(json.dumps(config))
    log = root / "orthanc.log"
    with log.open("wb") as out:
        process = subprocess.Popen([ORTHANC, str(path)], stdout=out, stderr=subprocess.STDOUT, cwd=root)
    server = Orthanc(http_port, dicom_port, process, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Orthanc exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            server.get("/system")
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.stop()
    pytest.fail(f"Orthanc did not answer within 30 s: {log.read_text()[-2000:]}")


def dciodvfy(data: bytes, tmp: Path) -> tuple[list[str], list[str]]:
    """dicom3tools' validator on one encoded file: (errors, warnings), one line each."""
    if shutil.which("dciodvfy") is None:
        pytest.fail("dciodvfy is missing: run scripts/install-test-tools.sh (Debian package dicom3tools)")
    path = tmp / f"check-{time.monotonic_ns()}.dcm"
    path.write_bytes(data)
    out = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = (out.stdout + out.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")], [line for line in lines if line.startswith("Warning")]
