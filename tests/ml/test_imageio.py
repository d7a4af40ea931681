"""Raster reading (JPEG, PNG) and the errors a person sees for bad uploads."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ml.errors import ImageReadError
from ml.io import frame as io_frame
from ml.io.frame import Frame
from ml.io.read import read_frames, read_image

def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", **kw)
    return buf.getvalue()


def _ramp(h: int = 32, w: int = 48) -> np.ndarray:
    """(h, w) uint8 horizontal ramp 0..255."""
    return np.tile(np.linspace(0, 255, w).round().astype(np.uint8), (h, 1))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A few-hundred-byte PNG whose header claims width x height (8-bit grey)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


# --------------------------------------------------------------------------- good files
def test_it_reads_an_8_bit_grey_png_exactly():
    ramp = _ramp()
    pixels = read_image(_png(Image.fromarray(ramp, "L")))
    assert pixels.dtype == np.float32 and pixels.shape == (32, 48)
    np.testing.assert_array_equal(pixels, ramp.astype(np.float32) / 255.0)


def test_it_reads_a_16_bit_png_with_full_precision():
    ramp16 = np.tile(np.linspace(0, 65535, 40).round().astype(np.uint16), (20, 1))
    ramp16[0, 1] = 257  # a value an 8-bit path would lose
    data = _png(Image.fromarray(ramp16))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")  # really 16-bit on disk
    pixels = read_image(data)
    np.testing.assert_allclose(pixels, ramp16 / 65535.0, atol=1e-6)
    assert pixels[0, 1] == pytest.approx(257 / 65535, abs=1e-7)


def test_it_reads_a_dark_16_bit_png_as_dark():
    # Every value <= 255: still 16-bit data, so it must stay near black, not be stretched.
    dark = np.tile(np.arange(0, 200, 5, dtype=np.uint16), (10, 1))
    pixels = read_image(_png(Image.fromarray(dark)))
    assert pixels.max() == pytest.approx(195 / 65535, abs=1e-6)


def test_it_reads_a_grey_jpeg_close_to_the_original():
    ramp = _ramp(64, 64)
    frames = read_frames(_jpeg(Image.fromarray(ramp, "L"), quality=95))
    assert len(frames) == 1 and isinstance(frames[0], Frame)
    assert frames[0].meta["format"] == "JPEG"
    assert frames[0].meta["colourfulness"] == 0.0
    np.testing.assert_allclose(frames[0].pixels, ramp / 255.0, atol=0.03)


def test_it_turns_rgb_into_luma():
    rgb = np.zeros((30, 30, 3), np.uint8)
    rgb[:10, :, 0] = 255  # red band
    rgb[10:20, :, 1] = 255  # green band
    rgb[20:, :, 2] = 255  # blue band
    frame = read_frames(_png(Image.fromarray(rgb, "RGB")))[0]
    assert frame.pixels.shape == (30, 30)
    assert frame.pixels[5, 5] == pytest.approx(0.299, abs=1e-3)
    assert frame.pixels[15, 5] == pytest.approx(0.587, abs=1e-3)
    assert frame.pixels[25, 5] == pytest.approx(0.114, abs=1e-3)
    assert frame.meta["colourfulness"] == pytest.approx(1.0)


def test_a_grey_image_saved_as_rgb_is_not_colourful():
    ramp = _ramp()
    rgb = np.stack([ramp] * 3, axis=-1)
    frame = read_frames(_jpeg(Image.fromarray(rgb, "RGB"), quality=95))[0]
    assert frame.meta["colourfulness"] < 0.02
    np.testing.assert_allclose(frame.pixels, ramp / 255.0, atol=0.03)


def test_it_composites_rgba_on_black():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere
    rgba[:8, :, 3] = 0  # top half fully transparent
    rgba[8:, :8, 3] = 255  # bottom-left opaque
    rgba[8:, 8:, 3] = 128  # bottom-right half transparent
    pixels = read_image(_png(Image.fromarray(rgba, "RGBA")))
    assert pixels[:8].max() == 0.0
    assert pixels[12, 2] == pytest.approx(1.0)
    assert pixels[12, 12] == pytest.approx(128 / 255, abs=0.01)


def test_it_reads_a_palette_png_through_its_palette():
    ramp = _ramp()
    palette_img = Image.fromarray(ramp, "L").convert("P")
    # Reverse the palette: index i shows grey 255 - i, so indices alone would be wrong.
    palette_img.putpalette([v for i in range(256) for v in (255 - i,) * 3])
    data = _png(palette_img)
    assert Image.open(io.BytesIO(data)).mode == "P"
    pixels = read_image(data)
    np.testing.assert_allclose(pixels, (255 - ramp.astype(np.float32)) / 255.0, atol=1e-6)


def test_it_reads_a_palette_png_with_transparency_as_black_there():
    img = Image.fromarray(np.full((12, 12), 200, np.uint8), "L").convert("P")
    idx = np.asarray(img)[0, 0]
    arr = np.asarray(img).copy()
    arr[:6] = 0 if idx != 0 else 1
    transparent = int(arr[0, 0])
    img = Image.fromarray(arr, "P")
    img.putpalette([v for i in range(256) for v in (200 if i == idx else 255,) * 3])
    pixels = read_image(_png(img, transparency=transparent))
    assert pixels[:6].max() == 0.0
    assert pixels[6:].min() == pytest.approx(200 / 255, abs=1e-6)


def test_paths_bytes_and_file_objects_give_the_same_image(tmp_path):
    data = _png(Image.fromarray(_ramp(), "L"))
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    from_path = read_image(path)
    from_str = read_image(str(path))
    from_bytes = read_image(data)
    with open(path, "rb") as fh:
        from_file = read_image(fh)
    for other in (from_str, from_bytes, from_file):
        np.testing.assert_array_equal(from_path, other)


# --------------------------------------------------------------------------- bad files
def test_an_empty_file_is_refused(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match="file is empty"):
        read_frames(empty)
    with pytest.raises(ImageReadError, match="file is empty"):
        read_frames(b"")


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ImageReadError, match="cannot open file"):
        read_frames(tmp_path / "nope.png")


def test_random_bytes_are_not_an_image():
    noise = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(ImageReadError, match="not a readable image"):
        read_frames(noise)


def test_a_text_file_is_not_an_image():
    with pytest.raises(ImageReadError, match="expected JPEG, PNG or DICOM"):
        read_frames(b"patient_id,name\n1,Someone\n" * 20)


@pytest.mark.parametrize("writer", [_png, _jpeg], ids=["png", "jpeg"])
def test_a_truncated_image_is_refused_as_damaged(writer):
    noisy = np.random.default_rng(1).integers(0, 256, (128, 128), dtype=np.uint8)
    data = writer(Image.fromarray(noisy, "L"))
    with pytest.raises(ImageReadError, match="damaged or truncated"):
        read_frames(data[: len(data) // 2])


def test_a_png_claiming_20000_by_20000_pixels_is_refused_before_decoding():
    bomb = _png_header_only(20_000, 20_000)
    assert len(bomb) < 200
    with pytest.raises(ImageReadError, match="pixel limit.*decompression bomb"):
        read_frames(bomb)


def test_a_png_just_over_our_limit_but_under_pillows_is_refused_with_its_size():
    bomb = _png_header_only(9_000, 8_000)  # 72 M pixels: above 64 M, below Pillow's 89 M
    with pytest.raises(ImageReadError, match=r"9000x8000 pixels, above the 64,000,000-pixel limit"):
        read_frames(bomb)


def test_the_pixel_limit_is_read_when_called(monkeypatch):
    monkeypatch.setattr(io_frame, "MAX_PIXELS", 100)
    with pytest.raises(ImageReadError, match="above the 100-pixel limit"):
        read_frames(_png(Image.fromarray(_ramp(), "L")))


def test_a_tiny_image_is_too_small_to_analyse():
    with pytest.raises(ImageReadError, match="4x4 pixels; too small"):
        read_frames(_png(Image.fromarray(np.zeros((4, 4), np.uint8), "L")))


def test_to_unit_range_scales_and_survives_constants_and_nans():
    np.testing.assert_allclose(io_frame.to_unit_range(np.array([-2.0, 0.0, 2.0])), [0.0, 0.5, 1.0])
    assert not io_frame.to_unit_range(np.full((3, 3), 7.0)).any()
    out = io_frame.to_unit_range(np.array([np.nan, 1.0, 3.0]))
    assert out.dtype == np.float32 and np.isfinite(out).all()
