"""`wanhe render/submit … --export-openjd DIR`: a wanhe Blender job as an OpenJD job bundle.

The bundle (Open Job Description 2023-09, as Deadline Cloud writes them):

    DIR/template.yaml           one step, Render, with the frames as the task parameter Frame:
                                blender -b --factory-startup -Y {{Param.SceneFile}} -E ENGINE
                                  -t THREADS -o OUTPUT -F OPEN_EXR_MULTILAYER -x 1
                                  -f {{Task.Param.Frame}}
    DIR/parameter_values.yaml   the values this export was made with (Deadline's format)
    DIR/asset_references.yaml   inputs (the scene and the files it uses) and the output folder
    DIR/scene.blend             a copy of the scene with wanhe's render settings saved in it

Blender's command line has no flag for samples, seed, camera, resolution % or denoising, and
a template that set them with `--python-expr` would need Python allowed on every worker. So the
export saves them into the bundle's copy of the scene (opened with auto-run scripts off,
relative paths remapped so textures still resolve) and the template passes the rest as
Blender arguments. Frames rendered by `openjd run` with that template equal `wanhe render`'s
bit for bit (tests/test_openjd_export.py).

Tiles and sample chunks are refused: a border render per task and an assembly step have no
Blender command-line form, and a bundle that needs wanhe to assemble would not run "as it is"
elsewhere. `--qc`, `--video` and `--quality` are wanhe's own steps and are refused too.
Denoising is exported as Cycles' own denoiser, noted in the template's description.

`plan_bundle` is pure (spec in, documents out); `export_bundle` does the I/O.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import yaml

from wanhe.render.spec import RenderOptions, RenderSpec

SPEC_VERSION = "jobtemplate-2023-09"
SCENE_NAME = "scene.blend"
OUTPUT_FORMAT = "OPEN_EXR_MULTILAYER"
ENGINES = ["CYCLES", "BLENDER_EEVEE", "BLENDER_WORKBENCH"]
DENOISE_NOTE = (
    "denoise: the exported job denoises each frame with Cycles' own denoiser inside Blender; "
    "wanhe denoises the assembled frame with OIDN itself, so denoised frames are close to "
    "wanhe's, not bit-identical (export with --no-denoise for identical frames)"
)


class ExportError(ValueError):
    """The job cannot be written as an OpenJD bundle (one line: what, and what to do)."""


@dataclass(slots=True)
class BundlePlan:
    """The bundle's documents and what goes into its scene copy."""

    template: dict[str, Any]
    parameter_values: dict[str, Any]
    asset_references: dict[str, Any]
    bake: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def check_exportable(options: RenderOptions) -> None:
    """Refuse what a plain `blender` command per frame cannot do (before any inspection)."""
    from wanhe.plan.tiles import parse_grid

    if parse_grid(options.tiles).count > 1:
        raise ExportError(
            f"--export-openjd cannot express tiles ({options.tiles}): each tile is a border "
            "render plus an assembly step, which Blender's command line has no form for — "
            "export whole frames (--tiles 1x1)"
        )
    if (options.split or 1) > 1:
        raise ExportError(
            f"--export-openjd cannot express --split {options.split} (tiles or sample chunks "
            "need wanhe's assembly) — export whole frames"
        )
    if options.sample_chunks > 1:
        raise ExportError(
            f"--export-openjd cannot express sample chunks ({options.sample_chunks}): merging "
            "them needs wanhe — export with --sample-chunks 1"
        )
    for flag, on in (("--qc", options.qc), ("--video", options.video),
                     ("--quality", options.quality is not None)):
        if on:
            raise ExportError(
                f"--export-openjd cannot express {flag}: it is a wanhe step with no Blender "
                f"command-line form — export without {flag}"
            )


def openjd_range(frames: list[int]) -> str:
    """Frames as an OpenJD range expression: [1, 2, 3, 5, 10, 15, 20] → '1-3,5-20:5'."""
    frames = sorted(set(frames))
    parts: list[str] = []
    i = 0
    while i < len(frames):
        j = i
        if i + 1 < len(frames):
            step = frames[i + 1] - frames[i]
            while j + 1 < len(frames) and frames[j + 1] - frames[j] == step:
                j += 1
            if j - i < 2 and step != 1:
                j = i  # two frames far apart: list them
        if j == i:
            parts.append(str(frames[i]))
            i += 1
            continue
        step = frames[i + 1] - frames[i]
        parts.append(f"{frames[i]}-{frames[j]}" + (f":{step}" if step != 1 else ""))
        i = j + 1
    return ",".join(parts)


def plan_bundle(
    spec: RenderSpec,
    bundle: Path,
    *,
    threads: int,
    output_dir: str,
    dependencies: list[str] | None = None,
) -> BundlePlan:
    """The bundle's documents for `spec`, its scene copy at `bundle`/scene.blend (pure).

    `threads`: Blender's `-t` (0 = every core of the worker). `output_dir`: the folder the
    frames go to (parameter_values' OutputDir); spec.output's file name is the pattern.
    """
    if spec.tiles_x * spec.tiles_y > 1 or spec.sample_chunks > 1:
        raise ExportError("--export-openjd exports whole frames only (tiles 1x1, one chunk)")
    if "{" in spec.output or "}" in spec.output:
        raise ExportError(
            f"the output pattern {spec.output!r} has {{ }}, which Blender 5.0 expands as a "
            "path template where wanhe writes the name as it is — pick an output without braces"
        )
    pattern = PurePath(spec.output).name
    frames = openjd_range(spec.frames)
    notes: list[str] = []
    baked = [f"{spec.width}x{spec.height} ({spec.resolution_percentage}%)"]
    if spec.engine == "CYCLES":
        baked.append(f"{spec.samples} samples" if spec.samples else "the scene's samples")
        if spec.seed is not None:
            baked.append(f"seed {spec.seed}")
        baked.append("Cycles denoiser on" if spec.denoise else "denoise off")
    if spec.camera:
        baked.append(f"camera {spec.camera}")
    if spec.denoise:
        notes.append(DENOISE_NOTE)
    description = (
        f"wanhe Blender render of {PurePath(spec.scene).name}, exported by wanhe. "
        f"Render settings saved in {SCENE_NAME}: {', '.join(baked)}; "
        f"frames written as multilayer EXR (32-bit float, ZIP). " + " ".join(notes)
    ).strip()
    template: dict[str, Any] = {
        "specificationVersion": SPEC_VERSION,
        "name": f"wanhe {PurePath(spec.scene).stem}",
        "description": description,
        "parameterDefinitions": [
            {"name": "SceneFile", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
             "default": SCENE_NAME,
             "description": "the .blend to render (the bundle's copy holds wanhe's settings)"},
            {"name": "Frames", "type": "STRING", "default": frames, "minLength": 1,
             "description": "frames to render, an OpenJD range expression (1-48, 1,5,10-20:2)"},
            {"name": "OutputDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
             "default": "output", "description": "where the frames go"},
            {"name": "OutputPattern", "type": "STRING", "default": pattern, "minLength": 1,
             "description": "file name of each frame; # = frame-number digits"},
            {"name": "Engine", "type": "STRING", "default": spec.engine,
             "allowedValues": sorted({*ENGINES, spec.engine})},
            {"name": "Threads", "type": "INT", "default": threads, "minValue": 0,
             "maxValue": 1024, "description": "Blender's -t: render threads, 0 = every core"},
        ],
        "steps": [{
            "name": "Render",
            "parameterSpace": {
                "taskParameterDefinitions": [
                    {"name": "Frame", "type": "INT", "range": "{{Param.Frames}}"},
                ],
            },
            "script": {
                "actions": {
                    "onRun": {
                        "command": "blender",
                        "args": [
                            "-b", "--factory-startup", "-Y", "{{Param.SceneFile}}",
                            "-E", "{{Param.Engine}}", "-t", "{{Param.Threads}}",
                            "-o", "{{Param.OutputDir}}/{{Param.OutputPattern}}",
                            "-F", OUTPUT_FORMAT, "-x", "1",
                            "-f", "{{Task.Param.Frame}}",
                        ],
                    },
                },
            },
        }],
    }
    if threads > 0:
        template["steps"][0]["hostRequirements"] = {
            "amounts": [{"name": "amount.worker.vcpu", "min": threads}],
        }
    scene_copy = str(bundle / SCENE_NAME)
    values = {
        "SceneFile": scene_copy, "Frames": frames, "OutputDir": output_dir,
        "OutputPattern": pattern, "Engine": spec.engine, "Threads": threads,
    }
    parameter_values = {
        "parameterValues": [{"name": k, "value": v} for k, v in values.items()],
    }
    asset_references = {
        "assetReferences": {
            "inputs": {"filenames": [scene_copy, *sorted(dependencies or [])],
                       "directories": []},
            "outputs": {"directories": [output_dir]},
            "referencedPaths": [],
        },
    }
    bake = {
        "engine": spec.engine,
        "resolution_percentage": spec.resolution_percentage,
        "camera": spec.camera,
        "samples": spec.samples,
        "seed": spec.seed,
        "denoise": spec.denoise,
        "output": f"{output_dir}/{pattern}",
    }
    return BundlePlan(template, parameter_values, asset_references, bake, notes)


def validate_template(template: dict[str, Any], values: dict[str, Any],
                      template_dir: Path) -> list[int]:
    """Decode `template` with openjd-model and expand it with `values`: the frames it renders.

    Raises ExportError with openjd-model's message when it is not a valid 2023-09 job.
    """
    from openjd.model import (
        DecodeValidationError,
        StepParameterSpaceIterator,
        create_job,
        decode_job_template,
        preprocess_job_parameters,
    )

    try:
        decoded = decode_job_template(template=template)
        params = preprocess_job_parameters(
            job_template=decoded, job_parameter_values={k: str(v) for k, v in values.items()},
            job_template_dir=template_dir, current_working_dir=template_dir,
        )
        job = create_job(job_template=decoded, job_parameter_values=params)
    except (DecodeValidationError, ValueError) as exc:
        raise ExportError(f"the exported template is not a valid OpenJD job: {exc}") from exc
    space = job.steps[0].parameterSpace
    assert space is not None
    return [int(task["Frame"].value) for task in StepParameterSpaceIterator(space=space)]


_BAKE = r"""
import json, sys
import bpy
src, dst, s = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
prefs = bpy.context.preferences.filepaths
prefs.use_scripts_auto_execute = False
bpy.ops.wm.open_mainfile(filepath=src, load_ui=False, use_scripts=False)
prefs.use_scripts_auto_execute = False
scene = bpy.context.scene
r = scene.render
r.engine = s["engine"]
r.resolution_percentage = s["resolution_percentage"]
r.use_border = False
r.use_file_extension = True
r.filepath = s["output"]
if s["camera"]:
    scene.camera = bpy.data.objects[s["camera"]]
im = r.image_settings
if hasattr(im, "media_type"):
    im.media_type = "MULTI_LAYER_IMAGE"
im.file_format = "OPEN_EXR_MULTILAYER"
im.color_depth = "32"
im.exr_codec = "ZIP"
if s["engine"] == "CYCLES":
    c = scene.cycles
    if s["samples"] is not None:
        c.samples = s["samples"]
    if s["seed"] is not None:
        c.seed = s["seed"]
        c.use_animated_seed = False
    c.use_denoising = bool(s["denoise"])
    c.use_sample_subset = False
    for vl in scene.view_layers:
        vl.cycles.denoising_store_passes = False
bpy.ops.wm.save_as_mainfile(filepath=dst, copy=True, relative_remap=True, compress=False)
"""


def bake_scene(src: Path, dst: Path, bake: dict[str, Any], timeout_s: float = 300.0) -> None:
    """Save a copy of `src` at `dst` with the render settings in `bake` (bpy, in a fresh
    process, auto-run scripts off)."""
    proc = subprocess.run(
        [sys.executable, "-P", "-c", _BAKE, str(src), str(dst), json.dumps(bake)],
        capture_output=True, text=True, timeout=timeout_s, check=False,
    )
    if proc.returncode != 0 or not dst.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ExportError(f"could not save the scene copy for the bundle: {' '.join(tail)}")


def _check_dest(dest: Path) -> None:
    dest = dest.expanduser().absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ExportError(
            f"--export-openjd {dest} exists and is not an empty folder — name a new folder"
        )


@dataclass(slots=True)
class ExportResult:
    folder: Path
    frames: list[int]
    notes: list[str]
    output_dir: str


def export_bundle(
    spec: RenderSpec,
    dest: Path,
    *,
    threads: int,
    output_dir: str | None = None,
    dependencies: list[str] | None = None,
) -> ExportResult:
    """Write the bundle for `spec` at `dest` (a new or empty folder), all or nothing.

    Everything is written in a temporary folder beside `dest` and renamed into place.
    """
    dest = dest.expanduser().absolute()
    _check_dest(dest)
    out = output_dir or str(PurePath(spec.output).parent)
    plan = plan_bundle(spec, dest, threads=threads, output_dir=out, dependencies=dependencies)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the bundle from the farm's job users
        bake_scene(Path(spec.scene), tmp / SCENE_NAME, plan.bake)
        values = {p["name"]: p["value"] for p in plan.parameter_values["parameterValues"]}
        values["SceneFile"] = str(tmp / SCENE_NAME)  # checked where it is now
        frames = validate_template(plan.template, values, tmp)
        if frames != sorted(spec.frames):
            raise ExportError(f"the template's frames {frames} are not the job's {spec.frames}")
        header = f"# written by wanhe --export-openjd from {spec.scene}\n"
        for name, doc in (("template.yaml", plan.template),
                          ("parameter_values.yaml", plan.parameter_values),
                          ("asset_references.yaml", plan.asset_references)):
            (tmp / name).write_text(header + yaml.safe_dump(doc, sort_keys=False, width=100))
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(dest, frames, plan.notes, out)


def export_render(
    scene: Path,
    options: RenderOptions,
    dest: Path,
    *,
    blender: str | None,
    threads: int,
    output_dir: str | None = None,
) -> ExportResult:
    """Inspect `scene`, meet it with `options` as `wanhe render` does, write the bundle.

    Nothing is rendered and no output folder is made: the bundle's job writes the frames.
    """
    from wanhe.blender.inspect import check_blend_file, inspect_scene
    from wanhe.jobtypes.blender_render import facts_from_report, resolve_spec
    from wanhe.render.spec import SceneFacts

    check_exportable(options)
    scene = scene.expanduser().resolve()
    check_blend_file(scene)
    _check_dest(dest)
    report = inspect_scene(scene, blender=blender)
    facts: SceneFacts = facts_from_report(report).model_copy(update={"path": str(scene)})
    spec = resolve_spec(options, facts)
    return export_bundle(
        spec, dest, threads=threads, output_dir=output_dir,
        dependencies=[str(p) for p in report.dependencies],
    )


def describe(result: ExportResult) -> list[str]:
    """What the CLI prints after an export."""
    lines = [
        f"wrote the OpenJD job bundle {result.folder} (template.yaml, parameter_values.yaml, "
        f"asset_references.yaml, {SCENE_NAME}): {len(result.frames)} frame(s), nothing rendered",
        f"run it: openjd run {result.folder}/template.yaml -p OutputDir={result.output_dir}",
    ]
    return lines + [f"note: {n}" for n in result.notes]
