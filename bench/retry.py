"""The cost of re-queuing a whole job (`wanhe retry`, a resumed `wanhe render`): a job of N
frames × (4 tiles → assemble → preview), cancelled, then `Store.retry_failed`, timed in a fresh
process per run on SQLite; with --baseline-src the runs alternate with another source tree.

    .venv/bin/python bench/retry.py [--frames 10000] [--runs 3] [--baseline-src /tmp/old/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import sys, time
from wanhe.model import TaskKind, TaskSpec
from wanhe.store.store import Store
frames, db = int(sys.argv[1]), sys.argv[2]
store = Store(f"sqlite:///{db}")
project = store.create_project("p")
tasks = []
for f in range(frames):
    tiles = [f"{f}/r{i}" for i in range(4)]
    tasks += [TaskSpec(k, TaskKind.RENDER, {}, frame=f) for k in tiles]
    tasks += [TaskSpec(f"{f}/asm", TaskKind.ASSEMBLE, {}, deps=tiles, frame=f),
              TaskSpec(f"{f}/prev", TaskKind.PREVIEW, {}, deps=[f"{f}/asm"], frame=f)]
job = store.create_job(project_id=project.id, name="s", kind="t", spec={}, fingerprint="fp",
                       tasks=tasks)
store.cancel_job(job)
started = time.monotonic()
assert store.retry_failed(job) == len(tasks)
print(time.monotonic() - started)
"""


def timed_retry(src: Path, frames: int, tag: str, work: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", PROBE, str(frames), str(work / f"{tag}.db")],
                         check=True, capture_output=True, text=True, env=env)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-src", type=Path, default=None)
    args = parser.parse_args()
    trees = {"this tree": REPO / "src"}
    if args.baseline_src is not None:
        trees = {"baseline": args.baseline_src, **trees}
    times: dict[str, list[float]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for name, src in trees.items():
                times[name].append(timed_retry(src, args.frames, f"{name[0]}{run}", Path(tmp)))
    print(f"# retry_failed of a cancelled job: {args.frames} frames, {args.frames * 6} tasks, "
          f"SQLite, median of {args.runs}")
    for name, values in times.items():
        print(f"{name}: {statistics.median(values) * 1000:.0f} ms  (raw {values})")


if __name__ == "__main__":
    main()
