"""What the sandbox costs a farm render: the same frames of the demo scene rendered by the
Blender executor as a farm job's tasks (project `bench`: its own OS user, a mount namespace
showing the job's folders, a cgroup), and with WANHE_SANDBOX=off, alternating, each side in a
fresh process (a cold Blender, then warm for the following frames, as on a worker).

    sudo .venv/bin/python bench/sandbox_overhead.py [--frames 1-2] [--repeat 2]

Needs root (the sandbox is off without it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ONE_SIDE = r"""
import json, sys, time
from pathlib import Path
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.blender import BlenderExecutor
job, first, last = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ex = BlenderExecutor(WorkerInfo(name="bench"))
started = time.monotonic()
for frame in range(first, last + 1):
    payload = {"scene": str(job / "input" / "demo.blend"), "frame": frame,
               "output": str(job / "work" / f"f{frame:06d}" / "tile000.exr"),
               "resolution_percentage": 100, "border": None, "expected_size": None,
               "samples": None, "seed": None, "threads": 2}
    ex.run("render", payload, TaskContext(project="bench", key=f"{frame}/render/t000"))
wall = time.monotonic() - started
ex.close()
print(json.dumps({"wall_s": wall}))
"""


def one_side(job: Path, first: int, last: int, sandbox: bool) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    if not sandbox:
        env["WANHE_SANDBOX"] = "off"
    done = subprocess.run([sys.executable, "-c", ONE_SIDE, str(job), str(first), str(last)],
                          check=True, capture_output=True, text=True, env=env)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["wall_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", default="1-2")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--kind", default="demo", help="examples/make_scenes.py scene kind")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: without root the sandbox is off on both sides")
    first, last = (int(x) for x in args.frames.split("-"))
    work = Path(tempfile.mkdtemp(prefix="wanhe-sandbox-bench-"))
    job = work / "jobs" / "1"
    for sub in ("input", "output", "work"):
        (job / sub).mkdir(parents=True)
    subprocess.run([sys.executable, str(REPO / "examples/make_scenes.py"), args.kind,
                    str(job / "input" / "demo.blend")], check=True, capture_output=True)
    on, off = [], []
    for _ in range(args.repeat):
        on.append(one_side(job, first, last, True))
        off.append(one_side(job, first, last, False))
    ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
    print(f"# farm render path, {args.kind} scene frames {args.frames}, median of {args.repeat}: "
          f"sandbox {statistics.median(on):.1f} s, WANHE_SANDBOX=off "
          f"{statistics.median(off):.1f} s, paired ratio {ratio:.3f} ({ratio - 1:+.1%})")
    print(f"raw: sandbox={on} off={off}")


if __name__ == "__main__":
    main()
