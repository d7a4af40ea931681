"""Send a study's result files to one destination in one go: one association, or one POST.

One call is one attempt for all the files (the caller counts attempts per study and
destination, never per file). Any refusal raises SendError with a reason a person can
act on; nothing here retries.
"""
from __future__ import annotations

import io
import uuid
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

_SUCCESS = 0x0000
_WARNINGS = {0x0001, 0xB000, 0xB006, 0xB007}


class SendError(Exception):
    """The destination did not take every file; ``str()`` says why (no patient data)."""


def _where(url: str) -> str:
    """The URL as a reason may show it: without a ``user:password@`` part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else "")))


def _encoded(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def send_cstore(datasets: list[Dataset], *, ae_title: str, host: str, port: int, calling_ae: str = "BRAINAI",
                timeout_s: float = 30.0) -> int:
    """C-STORE every dataset over one association; returns how many were stored.

    Raises:
        SendError: no association (refused, aborted, unreachable) or a failure status.
    """
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout_s
    for sop_class in sorted({ds.SOPClassUID for ds in datasets}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(host, port, ae_title=ae_title)
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "no answer"
        raise SendError(f"C-STORE to {ae_title}@{host}:{port}: association {why}")
    stored = 0
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code is None:
                raise SendError(f"C-STORE to {ae_title}@{host}:{port}: connection lost after {stored} files")
            if code != _SUCCESS and code not in _WARNINGS:
                raise SendError(f"C-STORE to {ae_title}@{host}:{port}: status 0x{code:04X} after {stored} files")
            stored += 1
    finally:
        if assoc.is_established:
            assoc.release()
    return stored


def send_stow(datasets: list[Dataset], *, url: str, username: str = "", password: str = "", token: str = "",
              timeout_s: float = 30.0) -> int:
    """STOW-RS every dataset in one multipart/related POST to ``url`` (``.../studies``).

    Raises:
        SendError: connection failure, an HTTP status other than 200/202, or a response
            that lists failed instances.
    """
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + _encoded(ds) + b"\r\n"
                    for ds in datasets) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
               "Accept": "application/dicom+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    auth = (username, password) if username else None
    try:
        response = httpx.post(url, content=body, headers=headers, auth=auth, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise SendError(f"STOW-RS to {_where(url)}: {type(exc).__name__}") from exc
    if response.status_code not in (200, 202):
        raise SendError(f"STOW-RS to {_where(url)}: HTTP {response.status_code}")
    try:
        failed = (response.json() or {}).get("00081198", {}).get("Value", [])  # Failed SOP Sequence
    except ValueError:
        failed = []
    if failed:
        raise SendError(f"STOW-RS to {_where(url)}: {len(failed)} of {len(datasets)} instances refused")
    return len(datasets)
