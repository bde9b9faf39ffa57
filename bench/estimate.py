"""How close `wanhe estimate` comes to what the render then costs (issue 26's proof).

For the demo scene and the `growing` scene (glass balls appear one by one, so later frames
cost about twice the first): build the scene, run `wanhe estimate --json` with an empty probe
cache, then render the same frames with `wanhe render --report-json`, and print estimated vs
actual core-hours and wall time, and the probe's own cost as a share of the render.

Core-hours are compared as CPU-hours: what the job bills on machines whose cores it has to
itself. On a shared machine the metered core-hours (cores × wall) also count the other
tenants' time; they are printed too, next to the estimate scaled by the contention the probe
measured.

    .venv/bin/python bench/estimate.py [--frames 24] [--work /tmp/wanhe-bench-estimate]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SCENES = {
    # kind: make_scenes.py arguments (small: the bench must run on a loaded 2-core machine)
    "demo": ["--resolution", "320x180", "--samples", "16"],
    "growing": ["--resolution", "320x180", "--samples", "16"],
}


def _wanhe(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([PYTHON, "-m", "wanhe.cli", *args], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout


def bench_scene(kind: str, frames: int, work: Path) -> dict[str, Any]:
    folder = work / kind
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    scene = folder / f"{kind}.blend"
    subprocess.run([PYTHON, str(ROOT / "examples" / "make_scenes.py"), kind, str(scene),
                    "--frames", f"1-{frames}", *SCENES[kind]], check=True, capture_output=True)
    env = {**os.environ, "WANHE_HOME": str(folder / "home"),
           "PYTHONPATH": str(ROOT / "src")}
    estimate = json.loads(_wanhe(["estimate", str(scene), "--frames", f"1-{frames}", "--json"],
                                 env))
    report = folder / "report.json"
    _wanhe(["render", str(scene), "--frames", f"1-{frames}", "-o", str(folder / "out" / "f_"),
            "--db", f"sqlite:///{folder / 'wanhe.db'}", "--report-json", str(report), "-q"], env)
    totals = json.loads(report.read_text())["totals"]
    actual_cpu_h = totals["cpu_hours"]
    low, high = estimate["core_hours_range"]
    contention = estimate["probe"]["contention"]
    return {
        "scene": kind,
        "frames": frames,
        "estimate_core_h": estimate["core_hours"],
        "range_core_h": [low, high],
        "actual_cpu_h": actual_cpu_h,
        "error": estimate["core_hours"] / actual_cpu_h - 1,
        "inside_range": low <= actual_cpu_h <= high,
        "actual_metered_core_h": totals["core_hours"],
        "estimate_x_contention_core_h": estimate["core_hours"] * contention,
        "estimate_wall_s_dedicated": estimate["wall_s"],
        "estimate_wall_s_here": estimate["wall_s"] * contention,
        "actual_wall_s": totals["wall_s"],
        "contention": contention,
        "probe_cpu_h": estimate["probe"]["core_hours"],
        "probe_share": estimate["probe"]["core_hours"] / actual_cpu_h,
        "sigma_parts": estimate["sigma_parts"],
        "frame_work_s": estimate["frame_work_s"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--work", type=Path, default=Path("/tmp/wanhe-bench-estimate"))
    parser.add_argument("--scenes", default=",".join(SCENES))
    args = parser.parse_args()
    rows = [bench_scene(kind, args.frames, args.work) for kind in args.scenes.split(",")]
    print(f"{'scene':<8} {'est CPU-h':>10} {'range':>21} {'actual':>9} {'error':>7} "
          f"{'in?':>4} {'probe':>6} | {'est wall':>8} {'×cont':>7} {'actual':>7}")
    for r in rows:
        low, high = r["range_core_h"]
        print(f"{r['scene']:<8} {r['estimate_core_h']:>10.5f} {low:>10.5f}–{high:<10.5f} "
              f"{r['actual_cpu_h']:>9.5f} {100 * r['error']:>+6.1f}% "
              f"{'yes' if r['inside_range'] else 'NO':>4} {100 * r['probe_share']:>5.1f}% | "
              f"{r['estimate_wall_s_dedicated']:>7.0f}s {r['estimate_wall_s_here']:>6.0f}s "
              f"{r['actual_wall_s']:>6.0f}s")
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
