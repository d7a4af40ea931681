"""Exceptions raised by ml/. One type per kind of failure a caller must handle."""


class ImageReadError(ValueError):
    """The input could not be turned into a grey image.

    The message is written for a person (clinic staff reading an upload rejection),
    e.g. "DICOM file has no pixel data (a structured report?)".
    """


class ModelNotFoundError(LookupError):
    """No shipped or configured model has the requested name."""
