"""DICOM reading: LUTs, photometrics, compression, multi-frame, damaged files, PHI.

Uses pydicom's bundled test files (only those shipped in the wheel; nothing is
downloaded) and small synthetic data sets where no bundled file covers a case.
"""
from __future__ import annotations

import io
import json
import logging
import os

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MPEG2MPML,
    EnhancedMRImageStorage,
    JPEG2000Lossless,
    RLELossless,
    MRImageStorage,
    generate_uid,
)

from ml.errors import ImageReadError
from ml.io import dicom
from ml.io import frame as io_frame
from ml.io.read import looks_like_dicom, read_frames, read_image

LUMA = np.array([0.299, 0.587, 0.114])
META_KEYS = {
    "modality", "study_instance_uid", "series_instance_uid", "sop_instance_uid",
    "instance_number", "frame_index", "number_of_frames", "patient_id", "patient_name",
    "patient_birth_date", "patient_sex", "study_date", "study_description",
    "series_description", "accession_number", "image_orientation_patient", "pixel_spacing",
    "photometric_interpretation", "transfer_syntax_uid",
}


def bundled(name: str) -> str:
    """Path of a test file shipped inside the pydicom wheel (never downloaded)."""
    path = get_testdata_file(name, download=False)
    assert path and os.path.exists(path), f"{name} is not bundled with this pydicom"
    return path


def raw(name: str) -> bytes:
    with open(bundled(name), "rb") as fh:
        return fh.read()


def to_bytes(ds: Dataset, **save_kw) -> bytes:
    """A Part-10 file (preamble + "DICM") unless ``enforce_file_format=False`` is passed."""
    buf = io.BytesIO()
    ds.save_as(buf, **{"enforce_file_format": True, **save_kw})
    return buf.getvalue()


def make_dicom(pixels: np.ndarray | None, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
               sop_class=MRImageStorage, **attrs) -> Dataset:
    """A small MR data set with made-up identifiers around ``pixels``.

    ``pixels``: (rows, cols) or (frames, rows, cols) integers, or (rows, cols, 3) RGB.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.PatientName = "Test^Synthetic"
    ds.PatientID = "SYN-0001"
    if pixels is not None:
        if bits_stored is None:
            bits_stored = pixels.dtype.itemsize * 8
        ds.set_pixel_data(pixels, photometric, bits_stored, generate_instance_uid=False)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def ramp(rows: int = 16, cols: int = 100, lo: int = 0, hi: int = 99, dtype=np.uint16) -> np.ndarray:
    """(rows, cols) with every row lo..hi left to right."""
    return np.tile(np.linspace(lo, hi, cols).round().astype(dtype), (rows, 1))


def window(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2.1 linear window into [0, 1], then min-max as the reader does."""
    out = np.clip((values - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
    return (out - out.min()) / (out.max() - out.min())


# --------------------------------------------------------------------------- MR_small
def test_it_reads_the_bundled_mr_with_its_window_applied():
    frames = read_frames(bundled("MR_small.dcm"))
    assert len(frames) == 1
    pixels = frames[0].pixels
    assert pixels.dtype == np.float32 and pixels.shape == (64, 64)
    assert pixels.min() == 0.0 and pixels.max() == 1.0

    # MR_small carries WC 600 / WW 1600, which clips its brightest pixels (up to 2145).
    stored = pydicom.dcmread(bundled("MR_small.dcm")).pixel_array.astype(np.float64)
    np.testing.assert_allclose(pixels, window(stored, 600, 1600), atol=1e-6)
    plain = (stored - stored.min()) / (stored.max() - stored.min())
    assert np.abs(pixels - plain).max() > 0.2  # the window really changed the image
    assert frames[0].meta["voi_lut_applied"] is True


def test_it_reports_the_facts_downstream_needs():
    meta = read_frames(bundled("MR_small.dcm"))[0].meta
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    assert META_KEYS <= set(meta)
    assert meta["modality"] == "MR"
    assert meta["study_instance_uid"] == ds.StudyInstanceUID
    assert meta["series_instance_uid"] == ds.SeriesInstanceUID
    assert meta["sop_instance_uid"] == ds.SOPInstanceUID
    assert meta["instance_number"] == 1
    assert meta["frame_index"] == 0 and meta["number_of_frames"] == 1
    assert meta["patient_name"] == "CompressedSamples^MR1"
    assert meta["patient_id"] == "4MR1"
    assert meta["patient_sex"] == "F"
    assert meta["study_date"] == "2004-08-26"
    assert meta["patient_birth_date"] is None  # empty in the file
    assert meta["accession_number"] is None  # empty in the file
    assert meta["image_orientation_patient"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert meta["pixel_spacing"] == [0.3125, 0.3125]
    assert meta["photometric_interpretation"] == "MONOCHROME2"
    assert meta["transfer_syntax_uid"] == ExplicitVRLittleEndian
    assert json.loads(json.dumps(meta)) == meta  # plain JSON types only


@pytest.mark.parametrize("name", [
    "MR_small_RLE.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_padded.dcm",
])
def test_every_encoding_of_the_mr_gives_the_same_image(name):
    reference = read_image(bundled("MR_small.dcm"))
    frame = read_frames(bundled(name))[0]
    np.testing.assert_allclose(frame.pixels, reference, atol=1e-6)
    assert frame.meta["transfer_syntax_uid"] == str(pydicom.dcmread(bundled(name)).file_meta.TransferSyntaxUID)


def test_a_dicom_without_its_preamble_is_still_read():
    data = raw("MR_small.dcm")
    stripped = data[132:]  # no preamble, no "DICM": the file meta group comes first
    assert not looks_like_dicom(stripped)
    assert dicom.might_be_dicom(stripped)
    np.testing.assert_array_equal(read_image(stripped), read_image(data))


def test_a_bare_data_set_without_file_meta_is_read_with_its_encoding_inferred():
    ds = pydicom.dcmread(bundled("MR_small_implicit.dcm"))
    ds.preamble, ds.file_meta = None, FileMetaDataset()
    bare = to_bytes(ds, implicit_vr=True, little_endian=True, enforce_file_format=False)
    assert bare.startswith(b"\x08\x00")  # straight into group 0008
    ds_check = pydicom.dcmread(io.BytesIO(bare), force=True)
    assert "TransferSyntaxUID" not in ds_check.file_meta
    frame = read_frames(bare)[0]
    np.testing.assert_allclose(frame.pixels, read_image(bundled("MR_small.dcm")), atol=1e-6)
    assert frame.meta["transfer_syntax_uid"] == ImplicitVRLittleEndian


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + b"\0" * 50, b"\x08\x00" + b"\xff" * 50, b"DICM", b""])
def test_non_dicom_bytes_do_not_look_like_dicom(data):
    assert not dicom.might_be_dicom(data)


# --------------------------------------------------------------------------- other bundled files
@pytest.mark.parametrize("name", [
    "JPGExtended.dcm",  # JPEG extended 12-bit
    "JPEG2000.dcm",  # lossy JPEG 2000, signed 16-bit
    "693_J2KI.dcm",  # lossy JPEG 2000 CT
    "JPEGLSNearLossless_16.dcm",
    "image_dfl.dcm",  # deflated explicit VR
    "CT_small.dcm",
])
def test_other_grey_encodings_decode_to_a_real_image(name):
    ds = pydicom.dcmread(bundled(name))
    pixels = read_image(bundled(name))
    assert pixels.shape == (ds.Rows, ds.Columns) and pixels.dtype == np.float32
    assert pixels.min() == 0.0 and pixels.max() == 1.0
    assert 0.01 < pixels.mean() < 0.99 and pixels.std() > 0.05


def test_the_bundled_ct_gets_its_rescale_and_stays_signed():
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    stored = ds.pixel_array.astype(np.float64)
    assert ds.PixelRepresentation == 1 and ds.RescaleIntercept == -1024
    hu = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_allclose(read_image(bundled("CT_small.dcm")), (hu - hu.min()) / np.ptp(hu), atol=1e-6)


def test_lossless_rgb_encodings_match_and_become_luma():
    rgb = pydicom.dcmread(bundled("SC_rgb_rle.dcm")).pixel_array.astype(np.float64) / 255.0
    expected = rgb @ LUMA
    for name in ("SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_gdcm_KY.dcm",
                 "SC_rgb_rle_16bit.dcm", "SC_rgb_rle_32bit.dcm"):
        frame = read_frames(bundled(name))[0]
        np.testing.assert_allclose(frame.pixels, expected, atol=1e-6, err_msg=name)
        assert frame.meta["colourfulness"] > 0.3


@pytest.mark.parametrize("name", [
    "SC_ybr_full_422_uncompressed.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, YBR_FULL
    "SC_rgb_dcmtk_+eb+cy+np.dcm",  # JPEG baseline, YBR_FULL_422
    "SC_rgb_jls_lossy_line.dcm",
])
def test_ybr_and_lossy_colour_files_match_the_lossless_rgb(name):
    reference = read_image(bundled("SC_rgb_rle.dcm"))
    np.testing.assert_allclose(read_image(bundled(name)), reference, atol=0.04)


def test_a_palette_colour_image_goes_through_its_palette():
    ds = pydicom.dcmread(bundled("examples_palette.dcm"))
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(ds.pixel_array, ds).astype(np.float64) / 65535.0
    frame = read_frames(bundled("examples_palette.dcm"))[0]
    np.testing.assert_allclose(frame.pixels, rgb @ LUMA, atol=1e-5)
    # Indices alone would be a different picture.
    indices = ds.pixel_array / 255.0
    assert np.abs(frame.pixels - indices).mean() > 0.01


def test_multi_frame_files_split_into_frames_in_order():
    frames = read_frames(bundled("SC_rgb_rle_2frame.dcm"))
    assert [f.meta["frame_index"] for f in frames] == [0, 1]
    assert all(f.meta["number_of_frames"] == 2 for f in frames)
    # The second frame of this file is the first one inverted.
    np.testing.assert_allclose(frames[1].pixels, 1.0 - frames[0].pixels, atol=1e-6)

    ybr = read_frames(bundled("examples_ybr_color.dcm"))
    assert len(ybr) == 30 and ybr[29].meta["frame_index"] == 29
    assert not np.array_equal(ybr[0].pixels, ybr[29].pixels)


def test_read_image_refuses_a_multi_frame_file():
    with pytest.raises(ImageReadError, match="holds 15 frames"):
        read_image(bundled("rtdose.dcm"))


def test_meta_of_every_readable_bundled_file_is_plain_json():
    for name in ("CT_small.dcm", "examples_ybr_color.dcm", "examples_palette.dcm", "JPEG2000.dcm"):
        for frame in read_frames(bundled(name)):
            assert json.loads(json.dumps(frame.meta)) == frame.meta


# --------------------------------------------------------------------------- LUTs and photometrics
def test_monochrome1_is_inverted_so_bright_means_high_signal():
    stored = ramp()
    mono2 = read_image(to_bytes(make_dicom(stored, "MONOCHROME2")))
    mono1 = read_image(to_bytes(make_dicom(stored, "MONOCHROME1")))
    assert mono2[0, 0] == 0.0 and mono2[0, -1] == 1.0
    assert mono1[0, 0] == 1.0 and mono1[0, -1] == 0.0  # lowest stored value is white
    np.testing.assert_allclose(mono1, 1.0 - mono2, atol=1e-6)


def test_monochrome1_is_inverted_after_the_window():
    ds = pydicom.dcmread(bundled("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_allclose(read_image(to_bytes(ds)), 1.0 - read_image(bundled("MR_small.dcm")), atol=1e-6)


def test_the_window_clips_outside_values():
    stored = ramp()  # 0..99
    pixels = read_image(to_bytes(make_dicom(stored, WindowCenter=50, WindowWidth=21)))
    values = stored[0].astype(np.float64)
    assert (pixels[0][values <= 39] == 0.0).all()
    assert (pixels[0][values >= 60] == 1.0).all()
    inside = (values > 41) & (values < 59)
    assert ((pixels[0][inside] > 0) & (pixels[0][inside] < 1)).all()
    np.testing.assert_allclose(pixels[0], window(values, 50, 21), atol=1e-6)


def test_the_first_of_several_windows_is_used():
    stored = ramp()
    pixels = read_image(to_bytes(make_dicom(stored, WindowCenter=[30, 80], WindowWidth=[11, 61])))
    np.testing.assert_allclose(pixels[0], window(stored[0].astype(float), 30, 11), atol=1e-6)


def test_an_unusable_window_falls_back_to_the_full_range():
    stored = ramp()
    frame = read_frames(to_bytes(make_dicom(stored, WindowCenter=50, WindowWidth=0)))[0]
    np.testing.assert_allclose(frame.pixels[0], stored[0] / 99.0, atol=1e-6)
    assert frame.meta["voi_lut_applied"] is False


def test_a_window_that_hides_everything_falls_back_to_the_full_range():
    stored = ramp()
    frame = read_frames(to_bytes(make_dicom(stored, WindowCenter=5000, WindowWidth=10)))[0]
    np.testing.assert_allclose(frame.pixels[0], stored[0] / 99.0, atol=1e-6)


def test_rescale_slope_is_applied_before_the_window():
    stored = ramp()
    # Slope -1 turns the ramp around; the window is in rescaled units (-99..0).
    pixels = read_image(to_bytes(make_dicom(stored, RescaleSlope=-1, RescaleIntercept=0,
                                            WindowCenter=-50, WindowWidth=21)))
    rescaled = -stored[0].astype(np.float64)
    np.testing.assert_allclose(pixels[0], window(rescaled, -50, 21), atol=1e-6)
    assert pixels[0, 0] == 1.0 and pixels[0, -1] == 0.0


def test_a_modality_lut_sequence_is_applied():
    stored = np.tile(np.arange(4, dtype=np.uint16).repeat(4), (8, 1))  # values 0..3
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.LUTData = [0, 300, 100, 200]  # not monotonic: order comes from the LUT
    item["LUTData"].VR = "US"
    item.ModalityLUTType = "US"
    ds = make_dicom(stored, ModalityLUTSequence=Sequence([item]))
    pixels = read_image(to_bytes(ds))
    assert pixels[0, 0] == 0.0  # stored 0 -> 0
    assert pixels[0, 4] == 1.0  # stored 1 -> 300 (the top)
    assert pixels[0, 8] == pytest.approx(1 / 3)  # stored 2 -> 100
    assert pixels[0, 12] == pytest.approx(2 / 3)  # stored 3 -> 200


def test_a_voi_lut_sequence_is_applied():
    stored = ramp(lo=0, hi=3, cols=16)
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item.LUTData = [4000, 3000, 2000, 1000]  # an inverting VOI LUT
    item["LUTData"].VR = "US"
    frame = read_frames(to_bytes(make_dicom(stored, VOILUTSequence=Sequence([item]))))[0]
    assert frame.meta["voi_lut_applied"] is True
    assert frame.pixels[0, 0] == 1.0 and frame.pixels[0, -1] == 0.0


def test_signed_16_bit_values_keep_their_sign():
    stored = ramp(lo=-1000, hi=1000, dtype=np.int16)
    ds = make_dicom(stored)
    assert ds.PixelRepresentation == 1
    pixels = read_image(to_bytes(ds))
    # Read as unsigned, -1000 would be 64536 and the brightest pixel.
    np.testing.assert_allclose(pixels[0], (stored[0] + 1000) / 2000.0, atol=1e-6)


def test_synthetic_rgb_becomes_luma():
    rgb = np.zeros((12, 12, 3), np.uint8)
    rgb[:4, :, 0] = 255
    rgb[4:8, :, 1] = 255
    rgb[8:, :, 2] = 255
    frame = read_frames(to_bytes(make_dicom(rgb, "RGB", 8)))[0]
    assert frame.pixels[0, 0] == pytest.approx(0.299, abs=1e-6)
    assert frame.pixels[5, 0] == pytest.approx(0.587, abs=1e-6)
    assert frame.pixels[10, 0] == pytest.approx(0.114, abs=1e-6)
    assert frame.meta["photometric_interpretation"] == "RGB"


def test_a_synthetic_multi_frame_keeps_each_frame():
    stack = np.stack([ramp(), ramp()[:, ::-1], np.zeros((16, 100), np.uint16)])
    stack[2, 4:8, 10:20] = 50
    frames = read_frames(to_bytes(make_dicom(stack)))
    assert len(frames) == 3
    assert frames[0].pixels[0, 0] == 0.0 and frames[1].pixels[0, 0] == 1.0
    assert frames[2].pixels.sum() == 40.0  # the 4x10 box, everything else black


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_signed_multi_frame_matches_the_native_file(syntax):
    stack = np.stack([ramp(64, lo=-500, hi=500, dtype=np.int16), ramp(64, lo=500, hi=-500, dtype=np.int16)])
    stack[1, :4] = -2000  # a dark band only in the second frame
    native = make_dicom(stack, "MONOCHROME1", WindowCenter=0, WindowWidth=801)
    expected = [f.pixels for f in read_frames(to_bytes(native))]
    native.compress(syntax)
    frames = read_frames(to_bytes(native))
    assert frames[0].meta["transfer_syntax_uid"] == syntax
    assert len(frames) == 2
    for frame, reference in zip(frames, expected):
        np.testing.assert_array_equal(frame.pixels, reference)
    assert (frames[1].pixels[:4] == 1.0).all()  # MONOCHROME1: the lowest values are white


def test_enhanced_multi_frame_uses_per_frame_functional_groups():
    stack = np.stack([ramp(), ramp()])
    ds = make_dicom(stack, sop_class=EnhancedMRImageStorage)
    shared, first, second = Dataset(), Dataset(), Dataset()
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.25]
    shared.PixelMeasuresSequence = Sequence([measures])
    for item, slope, orientation, (centre, width) in (
        (first, 1, [1, 0, 0, 0, 1, 0], (50, 21)),
        (second, -1, [0, 1, 0, 0, 0, -1], (-50, 201)),
    ):
        transform, plane, voi = Dataset(), Dataset(), Dataset()
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, 0, "US"
        plane.ImageOrientationPatient = orientation
        voi.WindowCenter, voi.WindowWidth = centre, width
        item.PixelValueTransformationSequence = Sequence([transform])
        item.PlaneOrientationSequence = Sequence([plane])
        item.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([first, second])

    frames = read_frames(to_bytes(ds))
    values = ramp()[0].astype(np.float64)
    np.testing.assert_allclose(frames[0].pixels[0], window(values, 50, 21), atol=1e-6)
    np.testing.assert_allclose(frames[1].pixels[0], window(-values, -50, 201), atol=1e-6)
    assert frames[0].meta["image_orientation_patient"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert frames[1].meta["image_orientation_patient"] == [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    assert frames[0].meta["pixel_spacing"] == frames[1].meta["pixel_spacing"] == [0.5, 0.25]


# --------------------------------------------------------------------------- refusals
def test_the_bundled_truncated_mr_says_how_much_is_missing():
    with pytest.raises(ImageReadError, match=r"^truncated DICOM: expected 8192 bytes of pixel data, found 8130$"):
        read_frames(bundled("MR_truncated.dcm"))


def test_a_multi_frame_cut_short_counts_every_frame():
    data = to_bytes(make_dicom(np.zeros((3, 10, 10), np.uint16)))
    with pytest.raises(ImageReadError, match="expected 600 bytes of pixel data, found 400"):
        read_frames(data[:-200])


def test_compressed_pixel_data_cut_short_is_called_truncated():
    data = raw("MR_small_RLE.dcm")
    with pytest.raises(ImageReadError, match="^truncated DICOM"):
        read_frames(data[: len(data) - 2000])


def test_a_file_cut_before_its_pixel_data_is_called_truncated_not_a_report():
    with pytest.raises(ImageReadError, match="^truncated DICOM.*MR Image Storage"):
        read_frames(raw("MR_small.dcm")[:1000])


@pytest.mark.parametrize("name, what", [
    ("reportsi.dcm", "SOP class 'Basic Text SR Storage', modality SR"),
    ("test-SR.dcm", "SOP class 'Comprehensive SR Storage', modality SR"),
    ("waveform_ecg.dcm", "modality ECG"),
    ("rtplan.dcm", "modality RTPLAN"),
])
def test_a_file_without_pixels_says_what_it_is(name, what):
    with pytest.raises(ImageReadError, match=r"^DICOM file has no pixel data \(a structured report\?\)") as err:
        read_frames(bundled(name))
    assert what in str(err.value)


def test_a_huge_frame_is_refused_before_decoding():
    ds = make_dicom(np.zeros((8, 8), np.uint16))
    ds.Rows = ds.Columns = 60_000  # 3.6 G pixels declared, 128 bytes present
    with pytest.raises(ImageReadError, match=r"60000x60000 pixels, above the 64,000,000-pixel limit"):
        read_frames(to_bytes(ds))


def test_too_many_frames_are_refused_before_decoding():
    ds = make_dicom(np.zeros((8, 8), np.uint16))
    ds.NumberOfFrames = io_frame.MAX_FRAMES + 1
    with pytest.raises(ImageReadError, match="2,001 frames, above the 2,000-frame limit"):
        read_frames(to_bytes(ds))


def test_too_many_pixels_across_frames_are_refused_before_decoding():
    ds = make_dicom(np.zeros((8, 8), np.uint16))
    ds.Rows = ds.Columns = 1024
    ds.NumberOfFrames = 1000  # each frame is fine; 1 G pixels together is not
    with pytest.raises(ImageReadError, match="pixel limit for one file"):
        read_frames(to_bytes(ds))


def test_a_deflated_file_that_inflates_too_far_is_refused_before_parsing(monkeypatch):
    data = raw("image_dfl.dcm")  # 512x512 8-bit: about 260 kB once inflated
    assert read_image(data).shape == (512, 512)
    monkeypatch.setattr(dicom, "MAX_INFLATED_BYTES", 100_000)
    with pytest.raises(ImageReadError, match="inflates to more than 100,000 bytes"):
        read_frames(data)


def test_the_dicom_pixel_limit_follows_imageio(monkeypatch):
    monkeypatch.setattr(io_frame, "MAX_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="64x64 pixels, above the 1,000-pixel limit"):
        read_frames(bundled("MR_small.dcm"))


def test_a_codestream_larger_than_its_header_is_refused_before_decoding():
    ds = pydicom.dcmread(bundled("MR_small_jp2klossless.dcm"))
    ds.Rows = ds.Columns = 32  # the JPEG 2000 data inside is 64x64
    with pytest.raises(ImageReadError, match="claims 64x64 pixels but the header says 32x32"):
        read_frames(to_bytes(ds))


def test_a_jpeg_codestream_larger_than_its_header_is_refused_before_decoding():
    ds = pydicom.dcmread(bundled("SC_rgb_jpeg_dcmtk.dcm"))
    ds.Rows = ds.Columns = 50  # the JPEG inside is 100x100
    with pytest.raises(ImageReadError, match="claims 100x100 pixels but the header says 50x50"):
        read_frames(to_bytes(ds))


def test_a_syntax_without_a_decoder_is_named():
    ds = make_dicom(np.zeros((8, 8), np.uint16))
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    ds["PixelData"].VR = "OB"
    with pytest.raises(ImageReadError, match=r"no decoder.*installed") as err:
        read_frames(to_bytes(ds))
    assert "MPEG2 Main Profile / Main Level" in str(err.value)


def test_damaged_compressed_data_is_refused_naming_the_syntax():
    # JPEG-lossy.dcm holds a JPEG stream that no decoder accepts (see pydicom's README).
    with pytest.raises(ImageReadError, match=r"compressed as 'JPEG Extended.*could not be decoded"):
        read_frames(bundled("JPEG-lossy.dcm"))


def test_a_header_with_a_non_numeric_frame_count_is_refused():
    with pytest.raises(ImageReadError, match="Number of Frames is not a whole number"):
        read_frames(bundled("badVR.dcm"))


def test_pixel_data_without_an_image_header_is_refused():
    with pytest.raises(ImageReadError, match="missing Rows, Columns"):
        read_frames(bundled("nested_priv_SQ.dcm"))


def test_a_preamble_followed_by_garbage_is_refused():
    garbage = np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    with pytest.raises(ImageReadError):
        read_frames(b"\x00" * 128 + b"DICM" + garbage)


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
def test_any_truncation_gives_an_image_or_a_read_error(name):
    data = raw(name)
    outcomes = set()
    for cut in range(133, len(data), 61):
        try:
            frames = read_frames(data[:cut])
            assert frames and frames[0].pixels.shape == (64, 64)
            outcomes.add("read")
        except ImageReadError as exc:
            assert str(exc)
            outcomes.add("refused")
    assert "refused" in outcomes


def test_corrupted_headers_give_an_image_or_a_read_error():
    data = raw("MR_small.dcm")
    rng = np.random.default_rng(7)
    pixel_start = data.index(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data
    for _ in range(150):
        damaged = bytearray(data)
        for pos in rng.integers(132, pixel_start, 3):
            damaged[pos] = int(rng.integers(0, 256))
        try:
            for frame in read_frames(bytes(damaged)):
                assert frame.pixels.dtype == np.float32
                assert np.isfinite(frame.pixels).all()
                assert frame.pixels.min() >= 0.0 and frame.pixels.max() <= 1.0
        except ImageReadError:
            pass


# --------------------------------------------------------------------------- privacy
def test_reading_never_logs_or_prints_patient_details(caplog, capfd):
    ds = make_dicom(ramp(), PatientName="Secretname^Person", PatientID="PHI-ID-ABCD",
                    PatientBirthDate="19990101", InstanceNumber="7")
    # An invalid value makes pydicom warn and log, quoting the value.
    # Replace inside the two elements only (explicit VR headers): a bare b"7 " also
    # matches a random UID ending in 7 followed by a (0020,xxxx) tag, which made this flaky.
    data = to_bytes(ds)
    assert data.count(b"IS\x02\x007 ") == 1 and data.count(b"DA\x08\x0019990101") == 1
    data = data.replace(b"IS\x02\x007 ", b"IS\x02\x007Z").replace(b"DA\x08\x0019990101", b"DA\x08\x001999x101")
    with pytest.warns(UserWarning, match="7Z"):
        pydicom.dcmread(io.BytesIO(data)).InstanceNumber  # noqa: B018 - proves the test can fail
    caplog.clear()
    capfd.readouterr()

    with caplog.at_level(logging.DEBUG):
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            meta = read_frames(data)[0].meta
    assert meta["patient_id"] == "PHI-ID-ABCD" and meta["instance_number"] is None
    assert meta["patient_birth_date"] is None  # not a date
    out, err = capfd.readouterr()
    emitted = caplog.text + out + err + " ".join(str(w.message) for w in caught)
    for secret in ("Secretname", "PHI-ID-ABCD", "1999x101", "7Z"):
        assert secret not in emitted
    assert not [r for r in caplog.records if r.name.startswith("pydicom")]
