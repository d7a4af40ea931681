"""No identifier, no DICOM text and no injection ever reaches an LLM server.

The record handed to the LLM layer is seeded with a patient's name, ids, dates, UIDs,
file name, DICOM descriptions carrying prompt injections, and an overlay PNG whose
metadata names the patient. The fake servers capture every raw request (request line,
headers, body) and every image inside it.
"""
import io
import struct

import numpy as np
import pytest
from PIL import Image

import llm.gemini  # noqa: F401  (import google-genai outside the timed calls)
from llm import LABELS, LLMConfig, StudyFinding, explain
from tests.fakes import FakeGemini, FakeOpenAI
from tests.builders import FORBIDDEN, seeded_overlay_png, seeded_record

PROVIDERS = ("gemini", "openai")


def make(provider, *modes, **options):
    fake = FakeGemini(*modes) if provider == "gemini" else FakeOpenAI(*modes)
    fake.start()
    config = LLMConfig(provider=provider, gemini_api_key="test-key",
                       gemini_base_url=fake.base_url, openai_base_url=fake.base_url,
                       openai_model="llama3.1:8b", backoff_s=0.01,
                       **{"timeout_s": 5.0, **options})
    return fake, config


def leaks(blob: bytes) -> list[str]:
    text = blob.decode("utf-8", "replace").lower()
    return [s for s in FORBIDDEN if s.lower() in text]


def png_chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks.append(kind)
        at += 12 + length
        if kind == b"IEND":
            assert at == len(png), "bytes after IEND"
    return chunks


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("label", LABELS)
def test_no_seeded_identifier_or_injection_is_sent(provider, label):
    # "contradict" first, so the correction prompt of the retry is captured too
    fake, config = make(provider, "contradict", "ok", send_images=True)
    with fake:
        explanation = explain(StudyFinding.from_mapping(seeded_record(label)), config,
                              overlay_png=seeded_overlay_png())
    assert explanation.provider == provider
    assert len(fake.requests) == 2 and len(fake.images()) == 2
    for request in fake.requests:
        assert leaks(request.raw()) == []
    for image in fake.images():
        assert leaks(image) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_overlay_goes_only_as_pixels(provider):
    overlay = seeded_overlay_png()
    fake, config = make(provider, send_images=True)
    with fake:
        explain(StudyFinding.from_mapping(seeded_record("glioma")), config, overlay_png=overlay)
    [sent] = fake.images()
    assert set(png_chunks(sent)) <= {b"IHDR", b"IDAT", b"IEND"}
    with Image.open(io.BytesIO(sent)) as im:
        assert not getattr(im, "text", {}) and "exif" not in im.info and "icc_profile" not in im.info
        sent_pixels = np.asarray(im.convert("RGB"))
    with Image.open(io.BytesIO(overlay)) as im:
        assert np.array_equal(sent_pixels, np.asarray(im.convert("RGB")))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_images_stay_home_unless_switched_on(provider):
    fake, config = make(provider, send_images=False)
    with fake:
        explain(StudyFinding.from_mapping(seeded_record("glioma")), config,
                overlay_png=seeded_overlay_png())
    assert fake.images() == []
    assert b"inlineData" not in fake.bodies[0] and b"image_url" not in fake.bodies[0]


def test_a_large_overlay_is_downscaled_before_it_leaves():
    big = io.BytesIO()
    Image.new("RGB", (1024, 768), (10, 200, 10)).save(big, format="PNG")
    fake, config = make("gemini", send_images=True)
    with fake:
        explain(StudyFinding.from_mapping(seeded_record("glioma")), config,
                overlay_png=big.getvalue())
    with Image.open(io.BytesIO(fake.images()[0])) as im:
        assert im.size == (512, 384)


def test_an_unreadable_overlay_is_left_out_and_the_text_still_comes():
    fake, config = make("openai", send_images=True)
    with fake:
        explanation = explain(StudyFinding.from_mapping(seeded_record("glioma")), config,
                              overlay_png=b"GIF89a not really")
    assert explanation.provider == "openai"
    assert fake.images() == []
