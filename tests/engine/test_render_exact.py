"""Tiles assemble bit-for-bit into the frame one Blender process renders whole.

Real Blender (bpy) renders on a real embedded Ray; denoise off, as the property requires.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import build_scene
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess
from wanhe.config import Settings
from wanhe.imaging.exr import read_layers
from wanhe.jobtypes.blender_render import RenderOptions
from wanhe.localrender import open_or_resume_job, prepare, render, run_jobs
from wanhe.store.store import Store

pytestmark = pytest.mark.slow


def reference(scene: Path, frame: int, out: Path) -> dict[str, np.ndarray]:
    with BlenderProcess() as blender:
        reply = blender.render(RenderRequest(scene=str(scene), frame=frame, output=str(out),
                                             threads=1))
    assert reply.ok, reply.error
    return read_layers(out).channels


@pytest.fixture(scope="module")
def odd_scene(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "odd.blend", "tiny", "--resolution", "97x61")


@pytest.fixture(scope="module")
def adaptive_scene(scene_dir: Path) -> Path:
    return build_scene(scene_dir / "adaptive.blend", "tiny", "--resolution", "90x70",
                       "--samples", "32", "--adaptive")


def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


GRIDS = ["2x2", "3x2", "1x4", "4x1", "5x3"]


def test_tiles_assemble_bit_exact(odd_scene: Path, tmp_path: Path, ray_local: None) -> None:
    """Non-square odd frame; grids that do not divide it; 1xN and Nx1 — one dispatcher runs all."""
    ref = reference(odd_scene, 2, tmp_path / "ref.exr")
    conf = settings(tmp_path)
    store = Store(conf.db_url)
    jobs = []
    for grid in GRIDS:
        options = RenderOptions(frames="2", tiles=grid, denoise=False,
                                output=str(tmp_path / grid / "f_####"))
        job, _, _ = open_or_resume_job(store, prepare(odd_scene, options), tmp_path / "work")
        jobs.append(job.id)
    run_jobs(store, jobs, settings=conf, threads=1, workers=2)
    for grid, job_id in zip(GRIDS, jobs, strict=True):
        assert store.job(job_id).state.value == "done"  # type: ignore[union-attr]
        got = read_layers(tmp_path / grid / "f_0002.exr")
        assert (got.width, got.height) == (97, 61)
        assert set(got.channels) == set(ref)
        for name, pixels in ref.items():
            assert np.array_equal(got.channels[name], pixels), f"{grid}: channel {name} differs"
        assert (tmp_path / grid / "f_0002.png").exists()
    store.dispose()


def test_adaptive_sampling_stays_exact_with_overscan(
    adaptive_scene: Path, tmp_path: Path, ray_local: None
) -> None:
    ref = reference(adaptive_scene, 1, tmp_path / "ref.exr")
    render(
        adaptive_scene,
        RenderOptions(frames="1", tiles="2x2", overscan=16, denoise=False,
                      output=str(tmp_path / "o/f_####")),
        settings=settings(tmp_path), workers=2,
    )
    got = read_layers(tmp_path / "o/f_0001.exr")
    for name, pixels in ref.items():
        assert np.array_equal(got.channels[name], pixels), f"channel {name} differs"
