"""wanhe.imaging.preview: linear EXR -> 8-bit sRGB PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wanhe.imaging.exr import Frame, write_layers
from wanhe.imaging.preview import srgb_encode, to_display_8bit, write_preview_png


def test_srgb_encode_known_values() -> None:
    linear = np.array([-1.0, 0.0, 0.0031308, 0.18, 0.5, 1.0, 4.0, np.nan], dtype=np.float32)
    encoded = srgb_encode(linear)
    expected = [0.0, 0.0, 0.04045, 0.46135, 0.73536, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(encoded, expected, atol=2e-5)
    assert encoded.dtype == np.float32


def test_srgb_encode_is_monotonic_and_continuous() -> None:
    x = np.linspace(0, 1, 10001, dtype=np.float32)
    y = srgb_encode(x)
    assert np.all(np.diff(y) >= 0)
    knee = srgb_encode(np.array([0.0031308, 0.0031309], dtype=np.float32))
    assert abs(float(knee[1] - knee[0])) < 1e-5


def _frame(rgba: np.ndarray) -> Frame:
    h, w = rgba.shape[:2]
    frame = Frame(w, h)
    frame.set_pass("Combined", rgba.astype(np.float32), view_layer="ViewLayer")
    return frame


def test_png_has_size_and_srgb_values(tmp_path: Path) -> None:
    rgba = np.ones((5, 7, 4), dtype=np.float32)
    rgba[0, 0, :3] = (0.18, 0.5, 0.0)
    rgba[1, 1, :3] = (2.0, -1.0, 0.0031308)
    exr, png = tmp_path / "f.exr", tmp_path / "f.png"
    write_layers(_frame(rgba), exr)
    assert write_preview_png(exr, png) == (7, 5)
    image = Image.open(png)
    assert image.size == (7, 5) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert tuple(pixels[0, 0]) == (118, 188, 0)  # round(255 * sRGB(0.18 / 0.5 / 0))
    assert tuple(pixels[1, 1]) == (255, 0, 10)
    assert tuple(pixels[2, 2]) == (255, 255, 255)
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_exposure_in_stops(tmp_path: Path) -> None:
    rgba = np.full((2, 2, 4), 0.25, dtype=np.float32)
    rgba[..., 3] = 1
    exr, png = tmp_path / "f.exr", tmp_path / "f.png"
    write_layers(_frame(rgba), exr)
    write_preview_png(exr, png, exposure=1.0)
    assert np.asarray(Image.open(png))[0, 0, 0] == round(255 * float(srgb_encode(np.float32(0.5))))


def test_transparent_frame_gets_straight_alpha(tmp_path: Path) -> None:
    rgba = np.zeros((3, 3, 4), dtype=np.float32)
    rgba[0, 0] = (0.25, 0.25, 0.25, 0.5)  # premultiplied: straight colour is 0.5
    exr, png = tmp_path / "f.exr", tmp_path / "f.png"
    write_layers(_frame(rgba), exr)
    write_preview_png(exr, png)
    image = Image.open(png)
    assert image.mode == "RGBA"
    assert tuple(np.asarray(image)[0, 0]) == (188, 188, 188, 128)


def test_to_display_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="H×W×3"):
        to_display_8bit(np.zeros((4, 4), dtype=np.float32))


def test_real_render_preview(noisy_render: Path, tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    write_preview_png(noisy_render, png)
    image = Image.open(png)
    assert image.size == (96, 72) and image.mode == "RGB"
    assert np.asarray(image).std() > 5
