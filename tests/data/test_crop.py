"""prepare.crop: the square liver box (crlm.data.prepare.liver_box) and what prepare_images keeps with it."""

import dataclasses

import numpy as np
import pandas as pd

from crlm.data.prepare import liver_box, prepare_images


def _liver(shape, rows, cols):
    liver = np.zeros(shape, np.uint8)
    liver[rows[0] : rows[1] + 1, cols[0] : cols[1] + 1] = 1
    return liver


def test_the_box_of_a_square_liver_is_its_bounding_box():
    assert liver_box(_liver((100, 100), (20, 29), (40, 49)), 0.0) == (slice(20, 30), slice(40, 50))


def test_the_box_is_square_around_the_longer_side_and_centred():
    # 10 rows x 20 columns: side 20, centred on row 25 -> rows 15..34
    assert liver_box(_liver((100, 100), (20, 29), (40, 59)), 0.0) == (slice(15, 35), slice(40, 60))


def test_the_margin_widens_each_side_by_margin_times_the_side():
    # side 10, margin 0.1: 1 px more on each side; margin 0.5: 5 px
    assert liver_box(_liver((100, 100), (20, 29), (40, 49)), 0.1) == (slice(19, 31), slice(39, 51))
    assert liver_box(_liver((100, 100), (20, 29), (40, 49)), 0.5) == (slice(15, 35), slice(35, 55))


def test_the_box_is_shifted_inside_the_image_at_its_borders():
    # side 10 * (1 + 2 * 0.5) = 20 around a liver in a corner: the box keeps its side and moves inside
    assert liver_box(_liver((100, 100), (0, 9), (0, 9)), 0.5) == (slice(0, 20), slice(0, 20))
    assert liver_box(_liver((100, 100), (90, 99), (90, 99)), 0.5) == (slice(80, 100), slice(80, 100))
    assert liver_box(_liver((100, 100), (0, 9), (90, 99)), 0.5) == (slice(0, 20), slice(80, 100))


def test_the_side_is_capped_at_the_image():
    # 80 x 100 liver, margin 0.1: 120 px wanted, the image has 100
    assert liver_box(_liver((100, 100), (10, 89), (0, 99)), 0.1) == (slice(0, 100), slice(0, 100))


def test_no_liver_keeps_the_whole_slice():
    assert liver_box(np.zeros((40, 50), np.uint8), 0.1) == (slice(0, 40), slice(0, 50))


def _one_slice(tmp_path):
    """A 64 x 64 slice: air, a 16 x 16 liver (rows 24..39, columns 20..35) with a 4 x 4 tumour inside."""
    image = np.full((64, 64), -1000, np.int16)
    liver = _liver((64, 64), (24, 39), (20, 35))
    tumour = _liver((64, 64), (30, 33), (26, 29))
    image[liver == 1] = 60
    np.savez_compressed(tmp_path / "s.npz", image=image, tumour=tumour, liver=liver)
    return pd.DataFrame({"image_id": ["s"], "path": ["s.npz"]})


def test_the_liver_crop_fills_the_image_with_liver_and_the_whole_slice_keeps_the_air(tmp_path, tiny_params):
    kept = _one_slice(tmp_path)
    cfg = dataclasses.replace(
        tiny_params.prepare, image_size=32, crop_margin=0.0, window_center_hu=60, window_width_hu=400
    )
    whole = prepare_images(kept, tmp_path, dataclasses.replace(cfg, crop="none"))
    cropped = prepare_images(kept, tmp_path, dataclasses.replace(cfg, crop="liver"))
    for arrays in (whole, cropped):
        assert arrays["images"].shape == arrays["tumour"].shape == arrays["liver"].shape == (1, 32, 32)
        assert arrays["images"].dtype == np.float16
        assert arrays["tumour"].dtype == arrays["liver"].dtype == np.uint8
        assert set(np.unique(arrays["tumour"])) | set(np.unique(arrays["liver"])) == {0, 1}  # binary masks
    # none: 64 -> 32 halves each side (16 x 16 liver -> 8 x 8, 4 x 4 tumour -> 2 x 2); air maps to 0
    assert whole["liver"].sum() == 64 and whole["tumour"].sum() == 4
    assert whole["images"][0, 0, 0] == 0.0
    # liver, margin 0: the 16 x 16 box is the liver, scaled 2x: all liver, the tumour 8 x 8
    assert cropped["liver"].sum() == 32 * 32 and cropped["tumour"].sum() == 64
    assert cropped["images"][0, 0, 0] == 0.5  # 60 HU, the window's centre
