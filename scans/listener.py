"""The DICOM C-STORE SCP: pynetdicom in, ``scans.services.dicom_inbox`` out.

One process (``manage.py dicom_listener``) answers C-ECHO and stores MR and secondary-
capture instances in any transfer syntax pydicom can decode here. Associations from a
calling AE title (and, when configured, address) outside BRAINAI_DICOM_ALLOWED are
rejected, logged with the AE title only. A timer thread in the same process takes in the
studies that have been quiet for BRAINAI_DICOM_STUDY_QUIET_S; it runs once at start, so
instances received before a restart are taken in after it.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import AllTransferSyntaxes, UID
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

from scans.services import dicom_inbox

logger = logging.getLogger(__name__)

def accepted_transfer_syntaxes() -> list[UID]:
    """Every transfer syntax whose pixel data pydicom decodes with the plugins installed here."""
    out = []
    for uid in AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                out.append(UID(uid))
        except NotImplementedError:  # no decoder of any kind for this syntax
            continue
    return out


@dataclass(frozen=True)
class AllowList:
    """Calling AE titles allowed to send, each with an optional address ("PACS@10.0.0.5"); "*" = any."""

    entries: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, items: list[str]) -> "AllowList":
        entries = []
        for item in items:
            title, _, address = item.partition("@")
            entries.append((title.strip(), address.strip() or None))
        return cls(tuple(entries))

    def allows(self, calling_ae: str, address: str) -> bool:
        return any(title in ("*", calling_ae) and addr in (None, address) for title, addr in self.entries)


class Listener:
    """The SCP and its intake timer; ``start()`` returns once it listens, ``stop()`` shuts both."""

    def __init__(self, *, host: str | None = None, port: int | None = None, ae_title: str | None = None,
                 allowed: list[str] | None = None, quiet_s: float | None = None):
        self.host = host or settings.BRAINAI_DICOM_HOST
        self.port = settings.BRAINAI_DICOM_PORT if port is None else port
        self.ae_title = ae_title or settings.BRAINAI_DICOM_AE_TITLE
        self.allow = AllowList.parse(settings.BRAINAI_DICOM_ALLOWED if allowed is None else allowed)
        self.quiet_s = settings.BRAINAI_DICOM_STUDY_QUIET_S if quiet_s is None else quiet_s
        self._stopping = threading.Event()
        self._server = None
        self._timer = None

    def start(self) -> int:
        """Listen (in background threads); return the port, which was chosen free when 0."""
        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = 0  # no limit: fewer, larger PDUs on a LAN
        ae.add_supported_context(Verification)
        syntaxes = accepted_transfer_syntaxes()
        for sop_class in sorted(dicom_inbox.ACCEPTED_SOP_CLASSES):
            ae.add_supported_context(sop_class, syntaxes)
        handlers = [(evt.EVT_C_ECHO, lambda event: 0x0000), (evt.EVT_C_STORE, self._on_store),
                    (evt.EVT_REQUESTED, self._on_requested), (evt.EVT_CONN_CLOSE, self._on_close)]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        self.port = self._server.server_address[1]
        self._timer = threading.Thread(target=self._intake_loop, name="dicom-intake", daemon=True)
        self._timer.start()
        return self.port

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
        if self._timer is not None:
            self._timer.join(30)

    def request_stop(self) -> None:
        """Ask ``wait()`` to return (from a signal handler)."""
        self._stopping.set()

    def wait(self) -> None:
        self._stopping.wait()

    # --- association events (each in its association's thread) ---------------------------

    def _on_requested(self, event) -> None:
        calling = str(event.assoc.requestor.primitive.calling_ae_title).strip()  # not yet on requestor
        if not self.allow.allows(calling, event.assoc.requestor.address):
            logger.warning("refused an association from calling AE %r: not in BRAINAI_DICOM_ALLOWED", calling)
            event.assoc.acse.send_reject(0x01, 0x01, 0x03)  # permanent, service user, calling AE not recognised

    def _on_store(self, event) -> int:
        try:
            study_uid = str(event.dataset.get("StudyInstanceUID", ""))
        except Exception:  # a dataset pydicom cannot parse
            return dicom_inbox.DATASET_DOES_NOT_MATCH
        data = event.encoded_dataset(include_meta=True)
        return dicom_inbox.receive_instance(event.assoc.requestor.ae_title.strip(),
                                            str(event.request.AffectedSOPInstanceUID), study_uid, data)

    def _on_close(self, event) -> None:
        connection.close()  # the association's thread had its own connection; it ends with it

    # --- the quiet-period intake -----------------------------------------------------------

    def _intake_loop(self) -> None:
        interval = max(0.2, min(self.quiet_s / 4, 5.0))
        while not self._stopping.is_set():
            try:
                close_old_connections()
                dicom_inbox.take_in_quiet_studies(self.quiet_s)
            except DatabaseError as exc:  # the rows wait; the next tick tries again
                logger.error("DICOM intake: database unavailable (%s); will retry", type(exc).__name__)
            except Exception:
                logger.exception("DICOM intake failed; will retry")
            self._stopping.wait(interval)
