"""Pure checks of the request/reply models and the border maths."""

from __future__ import annotations

import ast

import pytest
from pydantic import ValidationError

from wanhe.blender.protocol import (
    MARKER,
    RenderReply,
    RenderRequest,
    SceneInfo,
    border_fraction,
    border_from_pixels,
    border_to_pixels,
)
from wanhe.blender.runner import WORKER_SCRIPT


def _req(**kw: object) -> RenderRequest:
    base: dict[str, object] = {"scene": "/s.blend", "frame": 1, "output": "/o.exr"}
    return RenderRequest(**{**base, **kw})  # type: ignore[arg-type]


def test_marker_matches_worker_script() -> None:
    # The worker cannot import wanhe, so it keeps its own copy of the marker.
    tree = ast.parse(WORKER_SCRIPT.read_text())
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "MARKER" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert values == [MARKER]


def test_worker_script_imports_only_stdlib_and_bpy() -> None:
    import sys

    tree = ast.parse(WORKER_SCRIPT.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots - {"bpy", "__future__"} <= set(sys.stdlib_module_names)


def test_reply_and_info_models() -> None:
    assert RenderReply(ok=False, error="x").width == 0
    info = SceneInfo(
        frame_start=1,
        frame_end=10,
        frame_step=1,
        fps=23.976,
        resolution_x=1921,
        resolution_y=1081,
        resolution_percentage=33,
        engine="CYCLES",
        camera=None,
        cameras=[],
        samples=None,
        adaptive_sampling=None,
        output_path="//render/x_####",
        blender_version="5.0.1",
    )
    assert (info.width, info.height) == (633, 356)


def test_defaults_round_trip() -> None:
    r = _req()
    assert r.op == "render" and r.border is None and r.denoise_passes is False
    assert RenderRequest.model_validate_json(r.model_dump_json()) == r


@pytest.mark.parametrize(
    "bad",
    [
        {"scene": "relative.blend"},
        {"output": "out.exr"},
        {"border": (0.5, 0.5, 0.0, 1.0)},
        {"border": (0.0, 1.1, 0.0, 1.0)},
        {"expected_size": (0, 10)},
        {"resolution": (-1, 10)},
        {"samples": 0},
        {"sample_offset": 4},  # without a subset length
        {"sample_subset_length": 4},  # without an offset
        {"unknown_field": 1},
    ],
)
def test_invalid_requests_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _req(**bad)


def test_border_fractions_map_to_exact_pixels() -> None:
    assert border_fraction(0, 100) == 0.005
    assert border_fraction(100, 100) == 1.0
    with pytest.raises(ValueError):
        border_fraction(101, 100)
    for w, h in [(1, 1), (67, 45), (1920, 1080), (4097, 2161)]:
        for x0, x1 in [(0, w), (0, w // 2 or 1), (w // 3, w)]:
            if x0 >= x1:
                continue
            b = border_from_pixels(x0, x1, 0, h, w, h)
            assert border_to_pixels(b, w, h) == (x0, x1, 0, h)
