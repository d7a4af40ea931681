"""What every LLM provider offers, and the failures it may report.

A provider sends one request and maps whatever goes wrong onto one of the errors below;
:mod:`llm.explain` owns retries, the time budget and the fallback, so a provider
never retries, sleeps or falls back on its own.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from llm.prompt import Prompt

MAX_IMAGE_SIDE = 512  # px; the overlay is downscaled before it leaves the building
_MAX_INPUT_PIXELS = 8192 * 8192  # refuse to decode anything bigger (decompression bombs)


@dataclass(frozen=True)
class Reply:
    """One answer: the text and the model that the server says wrote it (if it says)."""

    text: str
    model: str | None = None


class ProviderError(Exception):
    """A request failed in a way that a retry will not fix (e.g. 400, 401, 404).

    Attributes:
        code: short machine-readable reason, the start of Explanation.fallback_reason.
        detail: a sentence for the log and the stored fallback reason; never carries
            the prompt or the server's full answer.
    """

    code = "provider_error"

    def __init__(self, detail: str, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class TransientError(ProviderError):
    """429, 5xx or a refused connection: worth retrying after a pause."""

    code = "http_error"

    def __init__(self, detail: str, code: str | None = None, retry_after: float | None = None):
        super().__init__(detail, code)
        self.retry_after = retry_after


class OutputError(ProviderError):
    """The server answered, but with nothing usable (blocked, empty or malformed)."""

    code = "malformed_response"


class ProviderTimeout(ProviderError):
    """No complete answer within the time left."""

    code = "timeout"


class Provider(Protocol):
    """An LLM behind one HTTP API."""

    name: str  # "gemini", "openai"
    model: str

    def generate(self, prompt: Prompt, image_png: bytes | None, timeout_s: float) -> Reply:
        """Send one request and return the text.

        Args:
            prompt: the system instruction and the facts.
            image_png: an already de-identified PNG (see :func:`clean_png`), or None.
            timeout_s: the time this request may take.

        Raises:
            ProviderError: or one of its subclasses, for every failure.
        """
        ...

    def close(self) -> None:
        ...


def clean_png(png: bytes, max_side: int = MAX_IMAGE_SIDE) -> bytes:
    """Re-encode an overlay from its pixels only, so no metadata can travel with it.

    Text chunks, EXIF, ICC profiles and anything appended after the image data are
    dropped because a new image is built from the decoded RGB array. Burned-in text in
    the pixels themselves is not removed (see docs/explanations.md).

    Args:
        png: the overlay image (any format Pillow reads).
        max_side: longest side of the result, in pixels.

    Returns:
        PNG bytes with nothing but pixels.

    Raises:
        ValueError: the bytes are not a readable image, or it is implausibly large.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(png)) as im:
            if im.width * im.height > _MAX_INPUT_PIXELS:
                raise ValueError(f"overlay is {im.width}x{im.height} px, too large to send")
            im.thumbnail((max_side, max_side))
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)  # (h, w, 3)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"overlay is not a readable image ({type(exc).__name__})") from None
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", optimize=False)
    return out.getvalue()
