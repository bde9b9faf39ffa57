"""A render task's memory request comes from the scene's inspection: polygons, the .blend,
textures and the pixels of its tile, above a floor."""

from __future__ import annotations

from wanhe.blender.memory import FLOOR, render_memory
from wanhe.jobtypes.blender_render import (
    RenderOptions,
    SceneFacts,
    compile_render_job,
    reserve_render_memory,
    resolve_spec,
)
from wanhe.model import TaskKind

MIB = 1 << 20


def test_the_estimate_has_a_floor_and_grows_with_the_scene() -> None:
    empty = render_memory(polygons=0, blend_bytes=0, texture_bytes=0, pixels=0)
    assert empty == FLOOR
    demo = render_memory(polygons=760_000, blend_bytes=40 * MIB, texture_bytes=0,
                         pixels=1920 * 1080)
    assert 900 * MIB < demo < 1100 * MIB  # the demo scene: about 1 GiB
    assert render_memory(polygons=0, blend_bytes=0, texture_bytes=100 * MIB, pixels=0) \
        == FLOOR + 800 * MIB


def test_render_tasks_reserve_by_scene_and_tile_size() -> None:
    facts = SceneFacts(path="/s.blend", frame_start=1, frame_end=1, resolution_x=4000,
                       resolution_y=4000, engine="CYCLES", camera="Cam", cameras=["Cam"],
                       samples=4, polygons=1_000_000, texture_bytes=50 * MIB)

    def render_memory_of(tiles: str) -> int:
        spec = resolve_spec(RenderOptions(frames="1", tiles=tiles), facts)
        tasks = compile_render_job(spec, "/work")
        reserve_render_memory(tasks, spec, facts)
        renders = [t for t in tasks if t.kind == TaskKind.RENDER.value]
        assert all(t.resources.cpus >= 1 for t in renders)  # cores kept
        return max(int(t.resources.memory) for t in renders)

    whole, quarter = render_memory_of("1x1"), render_memory_of("2x2")
    assert whole > FLOOR + 1_000_000 * 400 + 400 * MIB
    assert whole - quarter > 500 * MIB  # 16 Mpx vs ~4 Mpx of buffers
