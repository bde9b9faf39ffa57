"""What wanhe costs on top of plain Blender, measured side by side in one run.

1. wall(`wanhe render`) / wall(plain bpy rendering the same frames in one process), for the
   demo scene, whole frames, denoise off on both sides (the same work), same thread count.
2. Fixed cost per extra tile: the same frame as 1x1 and as 4x2 tiles, serially on one worker.
   Warm: one Blender process keeps the scene loaded (what wanhe does). Cold: a fresh Blender
   process per tile (what a farm without warm workers pays).

Every figure is the median of --repeat runs, taken alternately so machine noise hits both sides.

    .venv/bin/python bench/render_overhead.py [--frames 1-8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

PLAIN = r"""
import sys, time, bpy
scene_path, out = sys.argv[1], sys.argv[2]
first, last, threads = (int(a) for a in sys.argv[3:6])
bpy.ops.wm.open_mainfile(filepath=scene_path, load_ui=False, use_scripts=False)
scene = bpy.context.scene
scene.render.threads_mode = "FIXED"
scene.render.threads = threads
scene.render.use_persistent_data = True
scene.cycles.use_denoising = False
settings = scene.render.image_settings
if hasattr(settings, "media_type"):
    settings.media_type = "MULTI_LAYER_IMAGE"
settings.file_format = "OPEN_EXR_MULTILAYER"
settings.color_depth = "32"
settings.exr_codec = "ZIP"
rendering = 0.0
for frame in range(first, last + 1):
    started = time.monotonic()
    scene.frame_set(frame)
    bpy.ops.render.render()
    bpy.data.images["Render Result"].save_render(f"{out}/plain_{frame:04d}.exr")
    rendering += time.monotonic() - started
print(f"rendering_s={rendering}")
"""


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.monotonic()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return time.monotonic() - started


def plain_bpy(scene: Path, out: Path, first: int, last: int) -> tuple[float, float]:
    """Plain bpy's wall, and the seconds of it its frames' render + save calls took."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PLAIN, str(scene), str(out), str(first),
                           str(last), "2"], check=True, capture_output=True, text=True)
    wall = time.monotonic() - started
    found = [line for line in done.stdout.splitlines() if line.startswith("rendering_s=")]
    return wall, float(found[-1].split("=", 1)[1])


def wanhe_render(scene: Path, work: Path, frames: str, tiles: str, workers: int, threads: int,
                 tag: str, overscan: int | None = 16, src: Path | None = None,
                 extra_env: dict[str, str] | None = None,
                 probes: Path | None = None) -> tuple[float, dict[str, object]]:
    """`wanhe render` as a user runs it; `src`: another checkout's src/ (a baseline);
    `overscan=None`: wanhe's default (the least that is exact); `probes`: a border-probe cache
    to start from (a scene rendered before), else a fresh home probes again."""
    home = work / f"home-{tag}"
    if probes is not None and probes.is_dir():
        shutil.copytree(probes, home / "probes", dirs_exist_ok=True)
    report = work / f"report-{tag}.json"
    cmd = [sys.executable, "-m", "wanhe.cli", "render", str(scene), "--frames", frames,
           "--tiles", tiles, *([] if overscan is None else ["--overscan", str(overscan)]),
           "--no-denoise", "--workers", str(workers), "--threads-per-task", str(threads),
           "--quiet", "--output", str(work / f"out-{tag}" / "f_####"),
           "--report-json", str(report)]
    env = {**os.environ, "WANHE_HOME": str(home), **(extra_env or {})}
    # this checkout's own src/ unless told another: never whichever wanhe the venv installed
    env["PYTHONPATH"] = str(src if src is not None else REPO / "src")
    wall = timed(cmd, env=env)
    return wall, json.loads(report.read_text())


def fixed_cost(scene: Path, work: Path, repeat: int, baseline: Path | None, tiles: str,
               cached_probe: bool) -> None:
    """The cost of one `wanhe render` command beyond its renders: one frame each way (`tiles`
    with wanhe's default overscan), alternating with plain bpy and optionally with a baseline
    checkout, so the VM's minute-to-minute noise hits every side alike. `cached_probe`: a
    tiled run finds the border probe's answer cached (the scene was rendered tiled before)."""
    out = work / "plain-fixed"
    out.mkdir(exist_ok=True)
    probes = work / "probe-cache" if cached_probe else None
    if probes is not None and tiles != "1x1":  # one untimed run fills the cache
        wanhe_render(scene, work, "1", tiles, 1, 2, "probe", overscan=None)
        shutil.copytree(work / "home-probe" / "probes", probes)
    plain, now, before, loads = [], [], [], []
    # each run's wall outside its render calls (Cycles' render and the EXR's save): the part
    # of the fixed cost that the render's own minute-to-minute noise does not move
    outside: dict[str, list[float]] = {"plain": [], "now": [], "before": []}
    for i in range(repeat):
        loads.append(os.getloadavg()[0])
        wall, rendering = plain_bpy(scene, out, 1, 1)
        plain.append(wall)
        outside["plain"].append(wall - rendering)
        wall, report = wanhe_render(scene, work, "1", tiles, 1, 2, f"f{i}", overscan=None,
                                    probes=probes)
        now.append(wall)
        outside["now"].append(wall - sum(render_task_walls(report)))
        if baseline is not None:
            wall, report = wanhe_render(scene, work, "1", tiles, 1, 2, f"g{i}", overscan=None,
                                        src=baseline, probes=probes)
            before.append(wall)
            outside["before"].append(wall - sum(render_task_walls(report)))
    loads.append(os.getloadavg()[0])
    p = statistics.median(plain)
    print(f"# fixed cost of one `wanhe render --tiles {tiles}` (1 demo frame), median of "
          f"{repeat}; load average {min(loads):.1f}-{max(loads):.1f}"
          + ("; border probe cached" if probes is not None and tiles != "1x1" else ""))

    def line(name: str, walls: list[float]) -> str:
        w = statistics.median(walls)
        paired = statistics.median(x - q for x, q in zip(walls, plain, strict=True))
        ratio = statistics.median(x / q for x, q in zip(walls, plain, strict=True))
        return (f"{name}: {w:.2f} s, +{w - p:.2f} s, ratio {w / p:.3f} (median of paired: "
                f"+{paired:.2f} s, {ratio:.3f})")

    print(f"plain bpy {p:.2f} s")
    print(line("wanhe render", now))
    if before:
        print(line(f"baseline {baseline}", before))
    med = {name: statistics.median(v) for name, v in outside.items() if v}
    print("outside the render calls (median s): "
          + ", ".join(f"{name} {v:.2f}" for name, v in med.items())
          + "; beyond plain: "
          + ", ".join(f"{name} +{v - med['plain']:.2f}" for name, v in med.items()
                      if name != "plain"))
    print(f"raw: plain={[round(x, 2) for x in plain]} wanhe={[round(x, 2) for x in now]} "
          f"baseline={[round(x, 2) for x in before]} load={[round(x, 1) for x in loads]}")


def render_task_walls(report: dict[str, object]) -> list[float]:
    attempts = report["attempts"]
    assert isinstance(attempts, list)
    return [float(a["wall_s"]) for a in attempts if a["kind"] == "render"]


def cold_tiles(scene: Path, work: Path, tiles: str) -> float:
    """Each tile in a fresh Blender process; returns the summed wall of all tiles."""
    from wanhe.blender.inspect import inspect_scene
    from wanhe.blender.protocol import RenderRequest
    from wanhe.blender.runner import BlenderProcess
    from wanhe.plan.tiles import parse_grid, plan_tiles

    info = inspect_scene(scene)
    total = 0.0
    for tile in plan_tiles(info.width, info.height, parse_grid(tiles), 16):
        border = None if tiles == "1x1" else tile.border(info.width, info.height)
        started = time.monotonic()
        with BlenderProcess() as blender:
            reply = blender.render(RenderRequest(
                scene=str(scene), frame=1, output=str(work / f"cold_{tile.index}.exr"),
                border=border, threads=2,
            ))
        assert reply.ok, reply.error
        total += time.monotonic() - started
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="1-8")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scene", type=Path, default=None, help="default: build the demo scene")
    parser.add_argument("--ratio-only", action="store_true",
                        help="plain bpy vs the default wanhe render only (no tiles)")
    parser.add_argument("--fixed-cost", action="store_true",
                        help="only the per-command fixed cost, from 1-frame runs")
    parser.add_argument("--sandbox-compare", action="store_true",
                        help="with --ratio-only: also run wanhe render with WANHE_SANDBOX=off "
                             "(the sandbox's cost, side by side; as root)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="with --fixed-cost: another checkout's src/ to compare against")
    parser.add_argument("--tiles", default="1x1",
                        help="with --fixed-cost: the frame's tiles, e.g. 3x2")
    parser.add_argument("--cached-probe", action="store_true",
                        help="with --fixed-cost and tiles: the border probe's answer cached")
    args = parser.parse_args()
    first, last = (int(x) for x in args.frames.split("-"))
    work = Path(tempfile.mkdtemp(prefix="wanhe-bench-"))
    scene = args.scene or work / "demo.blend"
    if args.scene is None:
        subprocess.run([sys.executable, str(REPO / "examples/make_scenes.py"), "demo",
                        str(scene)], check=True, capture_output=True)
    if args.fixed_cost:
        fixed_cost(scene, work, args.repeat, args.baseline_src, args.tiles, args.cached_probe)
        return
    plain_out = work / "plain"
    plain_out.mkdir()

    plain, farm_1x2, farm_2x1, unboxed = [], [], [], []
    for i in range(args.repeat):
        plain.append(timed([sys.executable, "-c", PLAIN, str(scene), str(plain_out),
                            str(first), str(last), "2"]))
        farm_1x2.append(wanhe_render(scene, work, args.frames, "1x1", 1, 2, f"a{i}")[0])
        if args.sandbox_compare:
            unboxed.append(wanhe_render(scene, work, args.frames, "1x1", 1, 2, f"s{i}",
                                        extra_env={"WANHE_SANDBOX": "off"})[0])
        if not args.ratio_only:
            farm_2x1.append(wanhe_render(scene, work, args.frames, "1x1", 2, 1, f"b{i}")[0])
    n = last - first + 1
    p, a = statistics.median(plain), statistics.median(farm_1x2)
    # Each wanhe run follows its plain run within a minute: the ratio within a pair is the
    # figure this VM's minute-to-minute noise moves least.
    paired = statistics.median(w / q for w, q in zip(farm_1x2, plain, strict=True))
    if args.ratio_only:
        print(f"# {n} demo frames, median of {args.repeat}: plain bpy {p:.1f} s, "
              f"wanhe render {a:.1f} s, ratio {a / p:.3f} (median of paired ratios "
              f"{paired:.3f})")
        if unboxed:
            u = statistics.median(unboxed)
            pairs = statistics.median(w / q for w, q in zip(unboxed, plain, strict=True))
            print(f"WANHE_SANDBOX=off: wanhe render {u:.1f} s, ratio {u / p:.3f} (median of "
                  f"paired ratios {pairs:.3f}); the sandbox costs {a / u - 1:+.1%}")
        print(f"raw: plain={plain} wanhe={farm_1x2} sandbox_off={unboxed}")
        return
    b = statistics.median(farm_2x1)

    whole_warm, tiled_warm, tiled_warm0, whole_cold, tiled_cold = [], [], [], [], []
    for i in range(args.repeat):
        whole_warm.append(sum(render_task_walls(
            wanhe_render(scene, work, "1", "1x1", 1, 2, f"w{i}")[1])))
        tiled_warm.append(sum(render_task_walls(
            wanhe_render(scene, work, "1", "4x2", 1, 2, f"t{i}")[1])))
        tiled_warm0.append(sum(render_task_walls(
            wanhe_render(scene, work, "1", "4x2", 1, 2, f"z{i}", overscan=0)[1])))
        whole_cold.append(cold_tiles(scene, work, "1x1"))
        tiled_cold.append(cold_tiles(scene, work, "4x2"))
    warm = (statistics.median(tiled_warm) - statistics.median(whole_warm)) / 7
    warm0 = (statistics.median(tiled_warm0) - statistics.median(whole_warm)) / 7
    cold = (statistics.median(tiled_cold) - statistics.median(whole_cold)) / 7

    print(f"# render overhead — {n} frames of the demo scene, median of {args.repeat}")
    print(f"command: .venv/bin/python bench/render_overhead.py --frames {args.frames} "
          f"--repeat {args.repeat}")
    print()
    print("| run | wall s | ratio vs plain bpy |")
    print("| --- | ---: | ---: |")
    print(f"| plain bpy, one process, 2 threads | {p:.1f} | 1.000 |")
    print(f"| wanhe render (default: 1 worker x 2 threads) | {a:.1f} | {a / p:.3f} "
          f"(paired: {paired:.3f}) |")
    print(f"| wanhe render, 2 workers x 1 thread | {b:.1f} | {b / p:.3f} |")
    print()
    print("| fixed cost per extra tile (4x2 vs 1x1, frame 1, 2 threads) | seconds |")
    print("| --- | ---: |")
    print(f"| warm worker, no overscan (the fixed cost alone) | {warm0:.2f} |")
    print(f"| warm worker, 16 px overscan (fixed cost + the extra pixels) | {warm:.2f} |")
    print(f"| cold (fresh Blender per tile) | {cold:.2f} |")
    print()
    print(f"raw: plain={plain} 1x2={farm_1x2} 2x1={farm_2x1} whole_warm={whole_warm} "
          f"tiled_warm={tiled_warm} tiled_warm_no_overscan={tiled_warm0} "
          f"whole_cold={whole_cold} tiled_cold={tiled_cold}")


if __name__ == "__main__":
    main()
