"""wanhe.imaging.denoise: OIDN on a real noisy Cycles render."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wanhe.imaging.denoise import DenoiseStats, denoise_frame
from wanhe.imaging.errors import DenoiseError
from wanhe.imaging.exr import read_layers, write_layers
from wanhe.imaging.preview import srgb_encode

from ._synth import synthetic_frame


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of display-encoded (sRGB, clipped) images, peak 1."""
    mse = float(np.mean((srgb_encode(image) - srgb_encode(reference)) ** 2))
    return 10.0 * np.log10(1.0 / mse)


def test_denoise_raises_psnr_vs_256_sample_reference(
    noisy_render: Path, reference_render: Path, tmp_path: Path
) -> None:
    out = tmp_path / "denoised.exr"
    stats = denoise_frame(noisy_render, out)
    noisy = read_layers(noisy_render)
    reference = read_layers(reference_render).rgb()
    denoised = read_layers(out)
    before, after = psnr(noisy.rgb(), reference), psnr(denoised.rgb(), reference)
    assert after > before + 4.0, (before, after)  # measured: 28.0 dB -> 34.4 dB
    assert stats.used_albedo and stats.used_normal and stats.notes == ()
    assert stats.quality == "high"
    assert stats.seconds > 0 and stats.seconds_per_megapixel == pytest.approx(
        stats.seconds / (96 * 72 / 1e6)
    )
    # layers: denoised Combined (alpha kept), the original kept as Noisy Image, aux kept
    assert denoised.passes()[:2] == ["Combined", "Noisy Image"]
    assert np.array_equal(denoised.rgba("Noisy Image"), noisy.rgba())
    assert np.array_equal(denoised.rgba()[..., 3], noisy.rgba()[..., 3])
    for name in ("Denoising Albedo", "Denoising Normal", "Denoising Depth"):
        assert np.array_equal(denoised.pass_array(name), noisy.pass_array(name))
    assert denoised.attributes["Software"] == noisy.attributes["Software"]
    assert stats.to_dict()["megapixels"] == pytest.approx(96 * 72 / 1e6)


def test_denoising_twice_starts_from_noisy_image(noisy_render: Path, tmp_path: Path) -> None:
    once, twice = tmp_path / "once.exr", tmp_path / "twice.exr"
    denoise_frame(noisy_render, once, quality="fast")
    stats = denoise_frame(once, twice, quality="fast")
    assert "already denoised" in stats.notes[0]
    a, b = read_layers(once), read_layers(twice)
    assert np.array_equal(a.rgba(), b.rgba())
    assert np.array_equal(a.rgba("Noisy Image"), b.rgba("Noisy Image"))


def test_in_place_denoise(noisy_render: Path, tmp_path: Path) -> None:
    path = tmp_path / "frame.exr"
    path.write_bytes(noisy_render.read_bytes())
    denoise_frame(path, path, quality="fast")
    assert read_layers(path).has_pass("Noisy Image")


def test_color_only_when_aux_passes_missing(noisy_render: Path, tmp_path: Path) -> None:
    frame = read_layers(noisy_render)
    for name in list(frame.channels):
        if "Denoising" in name:
            del frame.channels[name]
    src, out = tmp_path / "plain.exr", tmp_path / "out.exr"
    write_layers(frame, src)
    stats = denoise_frame(src, out, quality="balanced")
    assert not stats.used_albedo and not stats.used_normal
    assert any("colour only" in note for note in stats.notes)
    assert any("denoising_store_passes" in note for note in stats.notes)
    assert not np.array_equal(read_layers(out).rgb(), frame.rgb())


def test_nan_pixels_are_zeroed_and_counted(tmp_path: Path) -> None:
    frame = synthetic_frame(16, 12, seed=4)
    frame.channels["ViewLayer.Combined.G"][3, 4] = np.nan
    frame.channels["ViewLayer.Denoising Normal.X"][...] = np.clip(
        frame.channels["ViewLayer.Denoising Normal.X"], -1, 1
    )
    src, out = tmp_path / "nan.exr", tmp_path / "out.exr"
    write_layers(frame, src)
    stats = denoise_frame(src, out, quality="fast")
    assert stats.nonfinite_pixels == 1
    result = read_layers(out)
    assert np.isfinite(result.rgb()).all()
    assert np.isnan(result.rgba("Noisy Image")[3, 4, 1])  # the evidence is kept


def test_bad_inputs_raise_denoise_error(tmp_path: Path) -> None:
    with pytest.raises(DenoiseError, match="does not exist"):
        denoise_frame(tmp_path / "missing.exr", tmp_path / "out.exr")
    frame = synthetic_frame(8, 8)
    for name in list(frame.channels):
        if ".Combined." in name:
            del frame.channels[name]
    src = tmp_path / "nocombined.exr"
    write_layers(frame, src)
    with pytest.raises(DenoiseError, match="no Combined pass"):
        denoise_frame(src, tmp_path / "out.exr")
    with pytest.raises(DenoiseError, match="quality"):
        denoise_frame(src, tmp_path / "out.exr", quality="ultra")  # type: ignore[arg-type]
    assert not (tmp_path / "out.exr").exists()


def test_stats_type() -> None:
    stats = DenoiseStats(1000, 1000, "fast", True, True, 0.5, 0.5, 0)
    assert stats.megapixels == 1.0
