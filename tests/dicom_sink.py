"""A DICOM C-STORE receiver on loopback (pynetdicom): a destination that takes everything.

    with DicomSink() as sink:          # sink.port, sink.ae_title
        ...send to it...
        sink.received                  # SOP Class UIDs of the instances stored, in order

Lighter than Orthanc (tests/pacs.py) for tests that only need a send to succeed.
"""
from __future__ import annotations

import threading

from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification


class DicomSink:
    ae_title = "SINK"

    def __init__(self):
        self.received: list[str] = []
        self._lock = threading.Lock()
        self._server = None
        self.port = 0

    def _store(self, event):
        with self._lock:
            self.received.append(str(event.dataset.SOPClassUID))
        return 0x0000

    def __enter__(self) -> "DicomSink":
        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.add_supported_context(Verification)
        self._server = ae.start_server(("127.0.0.1", 0), block=False,
                                       evt_handlers=[(evt.EVT_C_STORE, self._store)])
        self.port = self._server.server_address[1]
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
