"""What splitting one frame costs: overscan pixels, and CPU seconds by tiles vs sample chunks.

1. Pixels rendered ÷ pixels in the frame for a 16×8 split of a 1920×1080 frame: the old
   16 px default against the exact-overscan rule (wanhe.plan.overscan), for adaptive sampling
   off and for typical adaptive settings. Pure arithmetic.
2. One demo frame (examples/make_scenes.py demo, at --percentage) rendered whole, then split
   N = 4, 8, 16 ways by tiles (the exact overscan) and by sample chunks, through wanhe's own
   task payloads, render executor and assembler in one warm Blender (scene sync paid once, as
   on a warm worker). Blender's CPU seconds (rusage, all threads) summed over a split's tasks,
   and the assembled frame's largest difference from the whole frame. Medians of --repeat.

    .venv/bin/python bench/split.py [--percentage 50] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from wanhe.plan.overscan import exact_overscan  # noqa: E402
from wanhe.plan.split import best_grid, pixel_ratio  # noqa: E402
from wanhe.plan.tiles import TileGrid  # noqa: E402


def overscan_table() -> list[dict[str, Any]]:
    grid = TileGrid(16, 8)
    rows = [{"case": "old default", "overscan": 16}]
    for case, adaptive, samples, threshold in [
        ("adaptive off (rule)", False, 128, 0.01),
        ("adaptive on, 64 samples, threshold 0.05 (demo)", True, 64, 0.05),
        ("adaptive on, 128 samples, threshold 0.01", True, 128, 0.01),
        ("adaptive on, 4096 samples, threshold 0.01 (Blender default)", True, 4096, 0.01),
    ]:
        rows.append({"case": case, "overscan": exact_overscan(
            adaptive=adaptive, samples=samples, threshold=threshold)})
    for row in rows:
        row["ratio"] = pixel_ratio(1920, 1080, grid, int(row["overscan"]))
    return rows


def render_split(
    blender: Any, scene: Path, options: Any, work: Path
) -> tuple[float, float, int, int, str | None]:
    """Render one frame as `options` split it: (CPU s, unused, tasks, overscan, output)."""
    from wanhe.engine.executors.base import TaskContext
    from wanhe.engine.executors.blender import run_render
    from wanhe.engine.executors.imaging import run_assemble
    from wanhe.jobtypes.blender_render import compile_render_job
    from wanhe.localrender import prepare

    spec = prepare(scene, options, process=blender).spec
    graph = compile_render_job(spec, str(work))
    cpu = 0.0
    renders = [t for t in graph if t.kind.value == "render"]
    for task in renders:
        cpu += run_render(task.payload, blender, TaskContext()).cpu_s
    assemble = next(t for t in graph if t.kind.value == "assemble")
    run_assemble(assemble.payload)
    return cpu, 0.0, len(renders), spec.overscan, assemble.payload["output"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--percentage", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--splits", default="4,8,16")
    args = parser.parse_args()

    table = overscan_table()
    print("pixels rendered ÷ frame pixels, 16x8 tiles of 1920x1080:")
    for row in table:
        print(f"  {row['case']:<62} {row['overscan']:>4} px  {row['ratio']:.4f}")

    import numpy as np

    from wanhe.blender.runner import BlenderProcess
    from wanhe.imaging.exr import read_layers
    from wanhe.jobtypes.blender_render import RenderOptions

    results: dict[str, list[float]] = {}
    diffs: dict[str, tuple[float, float]] = {}
    info: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="wanhe-bench-split-") as tmp:
        root = Path(tmp)
        scene = root / "demo.blend"
        subprocess.run([sys.executable, str(REPO / "examples" / "make_scenes.py"), "demo",
                        str(scene)], check=True, capture_output=True, timeout=300)
        base = {"frames": "1", "resolution_percentage": args.percentage, "denoise": False,
                "threads": args.threads, "seed": 0}
        configs: list[tuple[str, dict[str, Any]]] = [("whole", {})]
        for n in (int(v) for v in args.splits.split(",")):
            configs.append((f"tiles {n}", {"tiles": "auto", "_n": n}))
            configs.append((f"chunks {n}", {"sample_chunks": n}))
        with BlenderProcess() as blender:
            whole_path: Path | None = None
            for rep in range(args.repeat):
                for name, extra in configs:
                    extra = dict(extra)
                    if extra.get("tiles") == "auto":
                        n = int(extra.pop("_n"))
                        width = 640 * args.percentage // 100
                        height = 360 * args.percentage // 100
                        grid = best_grid(width, height, n, 0)
                        extra["tiles"] = str(grid)
                    out = root / f"{name.replace(' ', '_')}_{rep}" / "f_####"
                    options = RenderOptions(**base, **extra, output=str(out))
                    cpu, _, tasks, overscan, assembled = render_split(
                        blender, scene, options, root / "work" / f"{name}_{rep}")
                    results.setdefault(name, []).append(cpu)
                    info[name] = f"{tasks} task(s)" + (
                        f", {overscan} px overscan" if name.startswith("tiles") else "")
                    if name == "whole":
                        whole_path = Path(str(assembled))
                    elif whole_path is not None and rep == 0:
                        a = read_layers(Path(str(assembled))).rgb("Combined")
                        b = read_layers(whole_path).rgb("Combined")
                        delta = np.abs(a.astype(np.float64) - b)
                        diffs[name] = (float(delta.max()), float(delta.mean()))
                    print(f"  rep {rep} {name:<10} CPU {cpu:7.2f} s", flush=True)
    whole = statistics.median(results["whole"])
    print(f"\none demo frame at {args.percentage}% ({args.threads} threads), Blender CPU s, "
          f"median of {args.repeat}:")
    print(f"  {'whole':<10} {whole:7.2f} s  1.00×")
    rows = []
    for name, values in results.items():
        if name == "whole":
            continue
        med = statistics.median(values)
        worst, mean = diffs.get(name, (float("nan"), float("nan")))
        rows.append({"split": name, "cpu_s": med, "ratio": med / whole, "info": info[name],
                     "max_diff": worst, "mean_diff": mean})
        print(f"  {name:<10} {med:7.2f} s  {med / whole:.2f}×  ({info[name]}; vs whole: max "
              f"|Δ| {worst:.3g}, mean |Δ| {mean:.3g})")
    print(json.dumps({"overscan": table, "whole_cpu_s": whole, "splits": rows}))


if __name__ == "__main__":
    main()
