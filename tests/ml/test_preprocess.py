"""The one preprocessing function: shapes, ranges, the crop and its exact inverse."""
import numpy as np
import pytest

from ml.model.preprocess import head_box, prepare, unprepare_map


def _phantom(h=224, w=200, cy=110, cx=90, r=60):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w), np.float32)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = 0.6
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < (r // 3) ** 2] = 0.9
    return img


def test_it_returns_the_model_input_shape_in_unit_range():
    p = prepare(_phantom(), 128)
    assert p.x.shape == (128, 128)
    assert p.x.dtype == np.float32
    assert 0.0 <= p.x.min() and p.x.max() <= 1.0
    assert p.original_shape == (224, 200)


def test_it_crops_to_the_head_and_centres_it():
    img = _phantom(cy=70, cx=60, r=40)
    y0, x0, side = head_box(img)
    assert 80 <= side <= 100           # diameter 80 plus a small margin
    assert abs((y0 + side / 2) - 70) <= 2 and abs((x0 + side / 2) - 60) <= 2


def test_it_is_deterministic_and_does_not_modify_its_input():
    img = _phantom()
    before = img.copy()
    a, b = prepare(img, 128), prepare(img, 128)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(img, before)


def test_it_normalises_intensity_so_scale_does_not_matter():
    img = _phantom()
    np.testing.assert_allclose(prepare(img, 128).x, prepare(img * 0.3, 128).x, atol=1e-5)


def test_a_blank_image_gives_zeros_not_nan():
    p = prepare(np.zeros((100, 120), np.float32), 128)
    assert np.all(p.x == 0) and not np.isnan(p.x).any()


def test_unprepare_maps_a_model_space_point_back_to_the_same_anatomy():
    # A bright spot off-centre in the original must come back where it was.
    img = _phantom(h=240, w=260, cy=120, cx=140, r=90)
    img[150:180, 170:200] = 1.0                    # a 30-pixel bright square
    p = prepare(img, 128)
    heat = (p.x >= 0.99).astype(np.float32)       # the square, in model space
    back = unprepare_map(heat, p)
    assert back.shape == img.shape
    ys, xs = np.nonzero(back > 0.5)
    assert abs(ys.mean() - 164.5) < 1.5 and abs(xs.mean() - 184.5) < 1.5


def test_unprepare_handles_a_crop_that_reaches_outside_the_image():
    img = _phantom(h=100, w=300, cy=50, cx=150, r=45)   # wide image: square crop pads
    p = prepare(img, 64)
    back = unprepare_map(np.ones((64, 64), np.float32), p)
    assert back.shape == (100, 300)
    assert back.max() == pytest.approx(1.0)


def test_it_rejects_colour_arrays():
    with pytest.raises(ValueError, match="2-D grey"):
        prepare(np.zeros((10, 10, 3), np.float32), 64)
