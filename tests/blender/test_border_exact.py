"""Border tiles against whole frames, in real Blender: the probe tells exact scenes from
inexact ones, --split falls back to sample chunks with its reason, the exact-overscan rule
holds on odd sizes with adaptive sampling on and off, and QC catches tiles that disagree.

Scenes are built by tests/blender/border_scenes.py (particles instancing an emissive mesh;
the inexact one adds a volume). Tiny sizes and few samples: each render takes well under 1 s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wanhe.blender.border_probe import probe_borders
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess
from wanhe.config import Settings
from wanhe.imaging.exr import read_layers
from wanhe.jobtypes.blender_render import RenderOptions
from wanhe.localrender import prepare, qc_records, render
from wanhe.plan.overscan import exact_overscan
from wanhe.plan.tiles import TileGrid, box_border, plan_tiles
from wanhe.store.store import Store

pytestmark = pytest.mark.slow

BUILDER = Path(__file__).with_name("border_scenes.py")


def build(out: Path, kind: str, *args: str) -> Path:
    if not out.exists():
        subprocess.run([sys.executable, str(BUILDER), str(out), kind, *args], check=True,
                       capture_output=True, timeout=120)
    return out


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("border")
    return {
        "instanced": build(d / "instanced.blend", "instanced"),
        "volume": build(d / "volume.blend", "volume"),
    }


@pytest.fixture(scope="module")
def blender() -> BlenderProcess:
    with BlenderProcess() as process:
        yield process  # type: ignore[misc]


def test_probe_tells_exact_from_inexact(scenes: dict[str, Path], blender: BlenderProcess) -> None:
    exact = probe_borders(blender, scene=str(scenes["instanced"]), frame=1,
                          resolution=(64, 48), threads=2)
    assert exact.exact and exact.max_diff == 0.0
    inexact = probe_borders(blender, scene=str(scenes["volume"]), frame=1, resolution=(64, 48),
                            threads=2, hints=("volumes (material 'fog')",))
    assert not inexact.exact and inexact.max_diff > 0
    assert "volumes" in inexact.why_not()
    assert exact.wall_s < 30 and inexact.wall_s < 30  # cheap: three tiny renders


def test_split_falls_back_to_chunks_with_the_reason(
    scenes: dict[str, Path], tmp_path: Path, blender: BlenderProcess
) -> None:
    options = RenderOptions(split=4, output=str(tmp_path / "v" / "f_####"), denoise=False)
    cache = tmp_path / "probes"
    inexact = prepare(scenes["volume"], options, process=blender, cache_dir=cache)
    assert (inexact.spec.tiles_x, inexact.spec.tiles_y, inexact.spec.sample_chunks) == (1, 1, 4)
    assert inexact.spec.split_note is not None
    assert "would not be exact" in inexact.spec.split_note
    assert "volumes (material 'fog')" in inexact.spec.split_note
    assert len(list(cache.glob("border-*.json"))) == 1  # cached per scene …
    again = prepare(scenes["volume"], options, process=blender, cache_dir=cache)  # … and reused
    assert again.spec == inexact.spec

    exact = prepare(scenes["instanced"], options.model_copy(
        update={"output": str(tmp_path / "i" / "f_####")}), process=blender, cache_dir=cache)
    assert (exact.spec.tiles_x * exact.spec.tiles_y, exact.spec.sample_chunks) == (4, 1)
    assert exact.spec.overscan == 0 and exact.spec.tile_note is None


CASES = [  # (size, samples, adaptive, threshold, min samples)
    ("61x47", 16, False, 0.01, 0),
    ("61x47", 100, True, 0.02, 4),
    ("53x41", 200, True, 0.1, 4),
]


@pytest.mark.parametrize(("size", "samples", "adaptive", "threshold", "min_samples"), CASES)
def test_exact_overscan_rule_on_odd_sizes(
    tmp_path: Path, blender: BlenderProcess, size: str, samples: int, adaptive: bool,
    threshold: float, min_samples: int,
) -> None:
    args = ["--size", size, "--samples", str(samples), "--threshold", str(threshold),
            "--min-samples", str(min_samples)] + (["--adaptive"] if adaptive else [])
    scene = build(tmp_path / "s.blend", "instanced", *args)
    width, height = (int(v) for v in size.split("x"))
    overscan = exact_overscan(adaptive=adaptive, samples=samples, threshold=threshold,
                              min_samples=min_samples)
    assert (overscan == 0) == (not adaptive)

    def render_tiles(pad: int) -> dict[str, np.ndarray]:
        frame: dict[str, np.ndarray] = {}
        for tile in plan_tiles(width, height, TileGrid(3, 2), pad):
            out = tmp_path / f"t{pad}_{tile.index}.exr"
            reply = blender.render(RenderRequest(
                scene=str(scene), frame=1, output=str(out), threads=2,
                border=tile.border(width, height), expected_size=tile.render_size))
            assert reply.ok, reply.error
            kx0, ky0, kx1, ky1 = tile.keep_box
            x0, y0, x1, y1 = tile.core_box
            for name, pixels in read_layers(out).channels.items():
                frame.setdefault(name, np.zeros((height, width), pixels.dtype))
                frame[name][y0:y1, x0:x1] = pixels[ky0:ky1, kx0:kx1]
        return frame

    reply = blender.render(RenderRequest(scene=str(scene), frame=1,
                                         output=str(tmp_path / "whole.exr"), threads=2))
    assert reply.ok, reply.error
    whole = read_layers(tmp_path / "whole.exr").channels
    tiled = render_tiles(overscan)
    for name, pixels in whole.items():
        assert np.array_equal(tiled[name], pixels), f"channel {name} differs at {overscan} px"
    if adaptive and (size, samples) == ("61x47", 100):
        # the test can see a difference: without overscan this case is not exact
        bare = render_tiles(0)
        assert any(not np.array_equal(bare[n], p) for n, p in whole.items())


def test_qc_flags_tiles_that_disagree_at_their_seams(
    scenes: dict[str, Path], tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    flagged = {}
    for kind in ("volume", "instanced"):
        options = RenderOptions(frames="1", tiles="2x1", qc=True, denoise=False, threads=2,
                                output=str(tmp_path / kind / "f_####"))
        outcome = render(scenes[kind], options, settings=settings, workers=1)
        assert outcome.job.state.value == "done"
        store = Store(settings.db_url)
        record = qc_records(store, outcome.job.id)[0]
        store.dispose()
        assert record["seams"]["checked"] == 1
        flagged[kind] = record
    assert flagged["volume"]["flagged"] and flagged["volume"]["seams"]["disagree"]
    assert any("disagree" in r for r in flagged["volume"]["reasons"])
    assert not flagged["instanced"]["seams"]["disagree"] and not flagged["instanced"]["flagged"]


def test_one_pixel_of_overscan_is_not_always_enough(
    tmp_path: Path, blender: BlenderProcess
) -> None:
    """The 3×3 filter reaches 1 px per pass, but passes chain: here a 1 px overscan still
    differs from the whole frame while the rule's value (31 px) is exact."""
    scene = build(tmp_path / "a.blend", "instanced", "--size", "97x61", "--samples", "512",
                  "--adaptive", "--threshold", "0.005", "--min-samples", "4")
    width, height, cut = 97, 61, 48
    rule = exact_overscan(adaptive=True, samples=512, threshold=0.005, min_samples=4)
    assert rule == 31
    reply = blender.render(RenderRequest(scene=str(scene), frame=1, threads=2,
                                         output=str(tmp_path / "whole.exr")))
    assert reply.ok, reply.error
    whole = read_layers(tmp_path / "whole.exr").rgb("Combined")[:, :cut]
    differs = {}
    for pad in (1, rule):
        out = tmp_path / f"left{pad}.exr"
        reply = blender.render(RenderRequest(
            scene=str(scene), frame=1, threads=2, output=str(out),
            border=box_border((0, 0, cut + pad, height), width, height),
            expected_size=(cut + pad, height)))
        assert reply.ok, reply.error
        differs[pad] = not np.array_equal(read_layers(out).rgb("Combined")[:, :cut], whole)
    assert differs == {1: True, rule: False}
