"""Fixtures for the imaging tests: real Blender renders made on the fly (no committed EXRs)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

SCENE_SCRIPT = Path(__file__).with_name("blender_scene.py")

RenderFn = Callable[..., Path]


def _render(out: Path, *args: str) -> Path:
    proc = subprocess.run(
        [sys.executable, str(SCENE_SCRIPT), str(out), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0 or not out.exists():
        pytest.fail(f"Blender render failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return out


@pytest.fixture(scope="session")
def blender_render(tmp_path_factory: pytest.TempPathFactory) -> RenderFn:
    """render(name, *args) -> path of a tiny Cycles render (cached per argument list)."""
    pytest.importorskip("bpy")
    folder = tmp_path_factory.mktemp("blender")
    cache: dict[tuple[str, ...], Path] = {}

    def render(name: str, *args: str) -> Path:
        key = (name, *args)
        if key not in cache:
            cache[key] = _render(folder / f"{name}.exr", *args)
        return cache[key]

    return render


@pytest.fixture(scope="session")
def noisy_render(blender_render: RenderFn) -> Path:
    """96×72, 4 samples, with Denoising Albedo / Normal / Depth passes."""
    return blender_render("noisy4", "--samples", "4")


@pytest.fixture(scope="session")
def reference_render(blender_render: RenderFn) -> Path:
    """The same scene with 256 samples (a seed that differs from the noisy render's)."""
    return blender_render("ref256", "--samples", "256", "--seed", "7", "--no-passes")
