"""Readers: JPEG, PNG and DICOM files in, grey :class:`ml.io.frame.Frame` objects out.

:mod:`ml.io.read` is the entry point (``read_frames``, ``read_image``); :mod:`ml.io.frame`
holds the Frame and the size limits every reader enforces."""
