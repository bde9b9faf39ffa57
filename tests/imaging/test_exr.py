"""wanhe.imaging.exr: reading Blender's multilayer EXRs and writing them back bit-exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from wanhe.imaging.errors import ExrReadError, PassNotFoundError
from wanhe.imaging.exr import Frame, read_layers, split_channel_name, write_layers

from ._synth import synthetic_frame
from .conftest import RenderFn

BLENDER_CHANNELS = {
    "ViewLayer.Combined.R",
    "ViewLayer.Combined.G",
    "ViewLayer.Combined.B",
    "ViewLayer.Combined.A",
    "ViewLayer.Denoising Normal.X",
    "ViewLayer.Denoising Normal.Y",
    "ViewLayer.Denoising Normal.Z",
    "ViewLayer.Denoising Albedo.R",
    "ViewLayer.Denoising Albedo.G",
    "ViewLayer.Denoising Albedo.B",
    "ViewLayer.Denoising Depth.Z",
}


def _bits(a: np.ndarray) -> bytes:
    return a.view(np.uint32).tobytes()


def assert_frames_identical(a: Frame, b: Frame, *, same_order: bool = True) -> None:
    assert (a.width, a.height) == (b.width, b.height)
    if same_order:
        assert list(a.channels) == list(b.channels)
    assert set(a.channels) == set(b.channels)
    for name in a.channels:
        assert a.channels[name].dtype == np.float32
        assert _bits(a.channels[name]) == _bits(b.channels[name]), name


def test_split_channel_name() -> None:
    assert split_channel_name("ViewLayer.Combined.R") == ("ViewLayer", "Combined", "R")
    assert split_channel_name("View.Layer.001.Denoising Albedo.G") == (
        "View.Layer.001",
        "Denoising Albedo",
        "G",
    )
    assert split_channel_name("Combined.R") == ("", "Combined", "R")
    assert split_channel_name("R") == ("", "", "R")


def test_reads_real_blender_render(noisy_render: Path) -> None:
    frame = read_layers(noisy_render)
    assert (frame.width, frame.height) == (96, 72)
    assert set(frame.channels) == BLENDER_CHANNELS
    assert frame.view_layers == ["ViewLayer"]
    assert frame.passes()[0] == "Combined"
    assert frame.attributes["Software"].startswith("Blender 5.0")
    assert frame.attributes["cycles.ViewLayer.samples"] == "4"
    assert frame.color_spaces["ViewLayer.Denoising Normal"] == "data"
    assert frame.color_spaces["ViewLayer.Combined"] == "lin_rec709_scene"
    rgba = frame.rgba("Combined")
    assert rgba.shape == (72, 96, 4) and rgba.dtype == np.float32
    assert np.array_equal(rgba[..., 0], frame.channels["ViewLayer.Combined.R"])
    assert frame.pass_array("Denoising Normal").shape == (72, 96, 3)
    assert frame.pass_array("Denoising Depth").shape == (72, 96, 1)
    assert np.all(rgba[..., 3] == 1.0)


def test_rows_are_top_down(blender_render: RenderFn) -> None:
    """A Blender border render of the top-left quarter (y counted from the bottom in Blender)
    equals rows 0..h/2 and columns 0..w/2 of the full render: EXR row 0 is the top."""
    full = read_layers(blender_render("full64", "--size", "64x48"))
    top_left = read_layers(
        blender_render("topleft64", "--size", "64x48", "--border", "0,0.5,0.5,1")
    )
    assert (top_left.width, top_left.height) == (32, 24)
    for name, array in top_left.channels.items():
        assert np.array_equal(array, full.channels[name][:24, :32]), name
    assert not np.array_equal(top_left.rgb(), full.rgb()[24:, :32])


def test_round_trip_real_render_is_bit_exact(noisy_render: Path, tmp_path: Path) -> None:
    frame = read_layers(noisy_render)
    out = tmp_path / "copy.exr"
    write_layers(frame, out)
    again = read_layers(out)
    assert_frames_identical(frame, again)
    assert again.attributes["Software"] == frame.attributes["Software"]
    assert again.color_spaces == frame.color_spaces
    exr = OpenEXR.File(str(out), separate_channels=True)
    assert len(exr.parts) == 1  # classic single-part multilayer by default
    assert exr.parts[0].header["compression"] == OpenEXR.ZIP_COMPRESSION
    assert all(c.type() == OpenEXR.FLOAT for c in exr.parts[0].channels.values())
    # Blender 5.0's layout: one part per pass, each with its colorInteropID
    write_layers(frame, out, multipart=True)
    exr = OpenEXR.File(str(out), separate_channels=True)
    assert exr.parts[0].name() == "ViewLayer.Combined"
    assert exr.parts[1].header["colorInteropID"] == "lin_rec709_scene"  # Noisy/Albedo/…
    assert_frames_identical(frame, read_layers(out))
    assert read_layers(out).color_spaces == frame.color_spaces


@pytest.mark.parametrize("multipart", [True, False])
def test_round_trip_special_values_bit_exact(tmp_path: Path, multipart: bool) -> None:
    frame = synthetic_frame(13, 7, seed=3)
    r = frame.channels["ViewLayer.Combined.R"]
    r[0, 0], r[0, 1], r[0, 2], r[0, 3] = np.nan, np.inf, -np.inf, -0.0
    r.view(np.uint32)[1, 1] = 0x7FC00123  # a NaN with a payload
    r[1, 2] = np.float32(1e-45)  # denormal
    out = tmp_path / "special.exr"
    write_layers(frame, out, multipart=multipart)
    again = read_layers(out)
    # read_layers returns one canonical order whatever the layout
    assert_frames_identical(frame, again, same_order=False)
    assert again.passes() == ["Combined", "Denoising Albedo", "Denoising Depth", "Denoising Normal"]
    assert len(OpenEXR.File(str(out)).parts) == (4 if multipart else 1)


def test_bare_rgb_exr_reads_as_combined(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).random((5, 6, 3), dtype=np.float32)
    path = tmp_path / "plain.exr"
    OpenEXR.File(
        {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
        {"R": rgb[..., 0].copy(), "G": rgb[..., 1].copy(), "B": rgb[..., 2].copy()},
    ).write(str(path))
    frame = read_layers(path)
    assert np.array_equal(frame.rgb(), rgb)
    assert np.all(frame.rgba()[..., 3] == 1.0)


def test_half_channels_widen_exactly(tmp_path: Path) -> None:
    half = np.random.default_rng(2).random((4, 4)).astype(np.float16)
    path = tmp_path / "half.exr"
    OpenEXR.File({"type": OpenEXR.scanlineimage}, {"ViewLayer.Combined.R": half}).write(str(path))
    frame = read_layers(path)
    assert frame.channels["ViewLayer.Combined.R"].dtype == np.float32
    assert np.array_equal(frame.channels["ViewLayer.Combined.R"], half.astype(np.float32))


def test_missing_pass_names_what_exists(noisy_render: Path) -> None:
    frame = read_layers(noisy_render)
    with pytest.raises(PassNotFoundError, match=r"'Vector'.*Combined"):
        frame.pass_array("Vector")
    assert not frame.has_pass("Vector")
    assert frame.has_pass("Denoising Albedo")


def test_view_layer_chosen_automatically_and_explicitly() -> None:
    frame = synthetic_frame(4, 3, seed=1, layer="Main.001")
    other = synthetic_frame(4, 3, seed=2, layer="Background")
    frame.channels.update(other.channels)
    assert frame.view_layers == ["Main.001", "Background"]
    assert frame.view_layer == "Main.001"
    assert np.array_equal(frame.rgba(), frame.rgba(view_layer="Main.001"))
    assert np.array_equal(frame.rgba(view_layer="Background"), other.rgba())


def test_set_pass_replaces_in_place() -> None:
    frame = synthetic_frame(4, 3)
    order = list(frame.channels)
    frame.set_pass("Combined", np.zeros((3, 4, 4), dtype=np.float32))
    assert list(frame.channels) == order
    assert not frame.rgba().any()
    with pytest.raises(ValueError, match="must be"):
        frame.set_pass("Combined", np.zeros((4, 4, 4), dtype=np.float32))


def test_frame_rejects_wrong_arrays() -> None:
    with pytest.raises(ValueError, match="float32"):
        Frame(2, 2, {"ViewLayer.Combined.R": np.zeros((2, 2), dtype=np.float64)})
    with pytest.raises(ValueError, match="shape"):
        Frame(2, 2, {"ViewLayer.Combined.R": np.zeros((3, 2), dtype=np.float32)})


def test_corrupt_and_missing_files_raise_clear_errors(tmp_path: Path, noisy_render: Path) -> None:
    with pytest.raises(ExrReadError, match="does not exist"):
        read_layers(tmp_path / "nope.exr")
    truncated = tmp_path / "truncated.exr"
    truncated.write_bytes(noisy_render.read_bytes()[:2000])
    with pytest.raises(ExrReadError, match="truncated"):
        read_layers(truncated)
    junk = tmp_path / "junk.exr"
    junk.write_bytes(b"not an exr at all" * 10)
    with pytest.raises(ExrReadError, match="cannot read"):
        read_layers(junk)


def test_blender_reads_every_pass_of_our_files(noisy_render: Path, tmp_path: Path) -> None:
    """Cycles' own merge (OIIO inside Blender) keeps every pass of our default single-part
    file; from a multi-part file (Blender 5.0's own layout) it keeps only Combined."""
    ours, theirs = tmp_path / "ours.exr", tmp_path / "merged.exr"
    write_layers(read_layers(noisy_render), ours)
    script = (
        "import bpy, sys; a = sys.argv[1]; "
        "bpy.ops.cycles.merge_images(input_filepath1=a, input_filepath2=a, "
        "output_filepath=sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", script, str(ours), str(theirs)], check=True, timeout=120)
    merged = read_layers(theirs)
    assert set(merged.channels) == BLENDER_CHANNELS
    assert np.allclose(merged.rgb(), read_layers(ours).rgb(), rtol=1e-6)
