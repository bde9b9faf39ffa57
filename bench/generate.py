"""AI generation on the farm's executors with a tiny random Stable Diffusion pipeline (built
from configs, nothing downloaded): candidates per minute with the model kept warm (one
executor, as a wanhe worker runs them) vs a fresh load per task (a new executor per task, as
a farm that reloads the model every task does) vs a fresh process per task (which also pays
for importing torch and diffusers), one task per candidate vs batches of 4, and the cost of
scoring per candidate. Side by side, interleaved; medians of --runs.

    .venv/bin/python bench/generate.py [--tasks 6] [--runs 3] [--size 64] [--steps 4]
        [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=6)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()

    from wanhe.ai import tiny
    from wanhe.ai.models import inspect_model
    from wanhe.engine.executors.base import TaskContext, WorkerInfo
    from wanhe.engine.executors.diffusion import DiffusionExecutor
    from wanhe.engine.executors.gen_score import GenScoreExecutor

    root = Path(tempfile.mkdtemp(prefix="wanhe-bench-gen-"))
    facts = inspect_model(tiny.build("sd", root / "sd"))
    model = {"name": "tiny-sd", **{k: v for k, v in facts.to_dict().items() if k in (
        "path", "format", "pipeline_class", "task", "sha256", "gpu_memory")}}
    worker = WorkerInfo(gpu_ids=("0",) if args.device == "cuda" else ())
    threads = os.cpu_count() or 1
    serial = [0]

    def payload(seeds: list[int]) -> dict[str, Any]:
        serial[0] += 1
        return {
            "model": model, "warm_key": "model:tiny-sd", "threads": threads,
            "device": "gpu" if args.device == "cuda" else "cpu",
            "shot": 0, "shot_name": "s", "job_seed": 0, "prompt": "a red fox",
            "negative": "", "width": args.size, "height": args.size, "steps": args.steps,
            "guidance": 5.0, "image": None, "strength": 0.75, "frames": 1, "fps": 8,
            "candidates": [{"index": i, "seed": s,
                            "output": str(root / f"r{serial[0]}_c{i}.png")}
                           for i, s in enumerate(seeds)],
        }

    def warm(batch: int) -> float:
        ex = DiffusionExecutor(worker)
        ex.run("gen", payload([0]), TaskContext())  # the worker's first task loads it
        started = time.monotonic()
        for t in range(0, args.tasks, batch):
            ex.run("gen", payload(list(range(t, min(args.tasks, t + batch)))), TaskContext())
        ex.close()
        return args.tasks / (time.monotonic() - started) * 60

    def fresh() -> float:
        started = time.monotonic()
        for t in range(args.tasks):
            ex = DiffusionExecutor(worker)
            ex.run("gen", payload([t]), TaskContext())
            ex.close()
        return args.tasks / (time.monotonic() - started) * 60

    import json
    import subprocess
    import sys

    one = (
        "import json, sys; from wanhe.engine.executors.base import TaskContext, WorkerInfo; "
        "from wanhe.engine.executors.diffusion import DiffusionExecutor; "
        "p = json.loads(sys.argv[1]); g = sys.argv[2] == 'cuda'; "
        "DiffusionExecutor(WorkerInfo(gpu_ids=('0',) if g else ())).run('gen', p, "
        "TaskContext())"
    )

    def process() -> float:
        started = time.monotonic()
        for t in range(args.tasks):
            subprocess.run([sys.executable, "-c", one, json.dumps(payload([t])), args.device],
                           check=True, capture_output=True)
        return args.tasks / (time.monotonic() - started) * 60

    rates: dict[str, list[float]] = {"warm": [], "fresh": [], "process": [], "warm_batch4": []}
    for _ in range(args.runs):  # interleaved, so load on the machine hits each alike
        rates["warm"].append(warm(1))
        rates["fresh"].append(fresh())
        rates["process"].append(process())
        rates["warm_batch4"].append(warm(4))
    score_ex = GenScoreExecutor(worker)
    started = time.monotonic()
    score_ex._detector()
    detector_load = time.monotonic() - started
    made = sorted(str(p) for p in root.glob("r*_c*.png"))[: args.tasks]
    score_payload = {"shot": 0, "shot_name": "s", "prompt": "a red fox", "video": False,
                     "candidates": [{"index": i, "seed": i, "output": p}
                                    for i, p in enumerate(made)],
                     "output": str(root / "scores.json")}
    per_candidate = []
    for _ in range(args.runs):
        result = score_ex.run("gen_score", score_payload, TaskContext())
        per_candidate.append(result.wall_s / len(made))
    med = {k: statistics.median(v) for k, v in rates.items()}
    load = os.getloadavg()[0]
    print(f"tiny SD {args.size}x{args.size}, {args.steps} steps, {args.tasks} candidates, "
          f"{args.device}, {threads} threads, median of {args.runs}, load average {load:.1f}")
    print(f"candidates/min  warm model: {med['warm']:.1f}   fresh load per task: "
          f"{med['fresh']:.1f}   ratio warm/fresh: {med['warm'] / med['fresh']:.2f}x")
    print(f"candidates/min  fresh process per task: {med['process']:.1f}   ratio "
          f"warm/fresh process: {med['warm'] / med['process']:.2f}x")
    print(f"candidates/min  warm, batches of 4: {med['warm_batch4']:.1f}   "
          f"(batch 4 / batch 1: {med['warm_batch4'] / med['warm']:.2f}x)")
    print(f"scoring: {1000 * statistics.median(per_candidate):.1f} ms per candidate "
          f"(NSFW detector load once per worker: {detector_load:.2f} s)")


if __name__ == "__main__":
    main()
