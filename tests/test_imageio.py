"""Tests for edgeae.data.imageio: grids, per-sample PNGs, image shapes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeae.data import load_dataset
from edgeae.data.imageio import is_image_shape, save_grid, save_images, to_uint8
from edgeae.errors import DataError


def test_is_image_shape():
    assert is_image_shape((1, 8, 8)) and is_image_shape((3, 2, 5)) and is_image_shape((4, 1, 1))
    assert not is_image_shape((64,)) and not is_image_shape((2, 8, 8)) and not is_image_shape((1, 0, 8))


def test_to_uint8_scales_and_clips_floats():
    x = np.array([-0.5, 0.0, 0.5, 1.0, 2.0], np.float32)
    assert to_uint8(x).tolist() == [0, 0, 128, 255, 255]
    u = np.array([3, 200], np.uint8)
    assert to_uint8(u) is u


def test_save_grid_layout_and_pixels(tmp_path):
    top = np.full((3, 1, 2, 2), 255, np.uint8)  # 3 white tiles
    bottom = np.zeros((2, 1, 2, 2), np.float32)  # 2 black tiles, short row
    path = save_grid([top, bottom], tmp_path / "sub" / "grid.png", scale=2)
    img = np.asarray(Image.open(path))
    # rows * (h + 1) + 1 = 7, cols * (w + 1) + 1 = 10, times scale 2
    assert img.shape == (14, 20)
    assert img[0, 0] == 128  # border
    assert (img[2:6, 2:6] == 255).all()  # first original
    assert (img[8:12, 2:6] == 0).all()  # its reconstruction below
    assert (img[8:12, 14:18] == 128).all()  # missing third reconstruction stays grey


def test_save_grid_mixes_gray_and_colour(tmp_path):
    gray = np.full((1, 1, 3, 3), 0.2, np.float32)
    rgb = np.zeros((1, 3, 3, 3), np.uint8)
    rgb[0, 0] = 255
    img = np.asarray(Image.open(save_grid([gray, rgb], tmp_path / "g.png", scale=1)))
    assert img.shape == (9, 5, 3)
    assert img[1, 1].tolist() == [51, 51, 51] and img[5, 1].tolist() == [255, 0, 0]


def test_save_grid_refuses_bad_rows(tmp_path):
    with pytest.raises(DataError) as info:
        save_grid([np.zeros((2, 64), np.uint8)], tmp_path / "g.png")
    assert str(info.value) == "grid row 0 must be images of shape (N, C, H, W) with C in 1, 3, 4, got (2, 64)"
    with pytest.raises(DataError) as info:
        save_grid([np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3))], tmp_path / "g.png")
    assert str(info.value) == "grid rows must share one image size (HxW), got 2x2, 3x3"


@pytest.mark.parametrize("channels", [1, 3])
def test_save_images_round_trip(tmp_path, channels):
    x = np.random.default_rng(1).integers(0, 256, (3, channels, 4, 5), dtype=np.uint8)
    paths = save_images(x, tmp_path / "out")
    assert [p.name for p in paths] == ["00000.png", "00001.png", "00002.png"]
    np.testing.assert_array_equal(load_dataset(tmp_path / "out").x, x)
