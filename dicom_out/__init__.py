"""Results out as DICOM: the structured report, the overlay captures, and the senders.

Plain dicts in, pydicom Datasets (or send outcomes) out; no Django. scans.services.results
builds the dicts from a report (a signed version from its snapshot) and calls these.

    sr.build_sr          a Comprehensive 3D SR holding a TID 1500 measurement report
    capture.build_capture  a Secondary Capture of one Grad-CAM overlay, legend burned in
    send.send_cstore / send.send_stow   one association / one POST for all of a study's files
"""
from dicom_out.capture import build_capture
from dicom_out.send import SendError, send_cstore, send_stow
from dicom_out.sr import NOT_FOR_DIAGNOSIS, build_sr

__all__ = ["NOT_FOR_DIAGNOSIS", "SendError", "build_capture", "build_sr", "send_cstore", "send_stow"]
