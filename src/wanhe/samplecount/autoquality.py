"""``wanhe render --quality TARGET``: probe one frame, then render with the samples it picked."""

from __future__ import annotations

import math
import os
from typing import Any

from wanhe.render.spec import RenderSpec, SceneFacts
from wanhe.samplecount.levels import parse_quality_target
from wanhe.samplecount.probe import DEFAULT_LADDER, ProbeResult, probe_samples

__all__ = ["PROBE_FRACTION", "PROBE_MIN_WIDTH", "choose_samples", "probe_percentage"]

PROBE_FRACTION = 0.5  # the probe renders at half the job's width and height (1/4 of the pixels)
PROBE_MIN_WIDTH = 64  # ... but never narrower than this (OIDN and SSIM need some pixels)


def probe_percentage(spec: RenderSpec, facts: SceneFacts) -> int:
    """The resolution percentage the probe renders at."""
    full = spec.resolution_percentage or facts.resolution_percentage
    wanted = max(1, round(full * PROBE_FRACTION))
    floor = math.ceil(PROBE_MIN_WIDTH * 100 / max(facts.resolution_x, 1))
    return min(full, max(wanted, floor))


def choose_samples(
    spec: RenderSpec,
    facts: SceneFacts,
    quality: str,
    blender: str | None = None,
    *,
    ladder: tuple[int, ...] = DEFAULT_LADDER,
    reference_samples: int = 1024,
) -> tuple[dict[str, Any], RenderSpec]:
    """Run the probe for ``quality`` and return (its result as a dict, the spec to render)."""
    from wanhe.blender.runner import BlenderProcess

    target = parse_quality_target(quality)
    if spec.engine != "CYCLES":
        raise ValueError(f"--quality needs Cycles (it picks a sample count); this scene renders "
                         f"with {spec.engine}")
    frame = spec.frames[len(spec.frames) // 2]
    with BlenderProcess(blender) as process:
        result: ProbeResult = probe_samples(
            process, scene=spec.scene, frame=frame, target_db=target.db,
            target_label=target.label, resolution_percentage=probe_percentage(spec, facts),
            camera=spec.camera, ladder=ladder, reference_samples=reference_samples,
            denoise=spec.denoise, threads=os.cpu_count() or 1, seed=spec.seed or 0,
            scene_samples=facts.samples,
        )
    samples = max(result.chosen_samples, spec.sample_chunks)
    data = result.to_dict()
    data["samples"] = samples
    if samples != result.chosen_samples:
        data["explanation"] += (f"; raised to {samples} samples so each of the "
                                f"{spec.sample_chunks} sample chunks has one")
    return data, spec_for_probe(spec, data)


def spec_for_probe(spec: RenderSpec, probe: dict[str, Any]) -> RenderSpec:
    """`spec` at the probe's sample count, with its note when the target was not reached."""
    note = None if probe["reached"] else probe["explanation"]
    return spec.model_copy(update={"samples": int(probe["samples"]), "quality_note": note})
