"""How close `wanhe estimate` comes for AI jobs (issue 26, "Also for AI jobs"): a small gen
spec on the tiny Stable Diffusion pipeline (random weights, `wanhe.ai.tiny`) and the example
storyboard (examples/story/: Piper and espeak-ng voices, a rigged Blender shot lip-synced in
Mandarin, stills). Each is estimated with an empty probe cache and no history, then made
(`wanhe gen run`, `wanhe story render`), and the estimate is printed beside the attempts'
CPU seconds (what the estimate counts) and their metered core-seconds (cores × wall) from
the database. Then the gen spec is estimated again: from the history of that run.

The reel is rendered with `--workers N` (default 1): a local run's workers are threads of one
process, and an in-process task (voice, clip, reel, gen) is metered with the process's rusage,
so with two at once each one's CPU seconds hold the other's too. The storyboard's wall time is
estimated on one machine of N cores (its task graph scheduled with its dependencies) and
printed beside the job's actual wall (its first attempt's start to its last one's end), and
beside that estimate stretched by the run's measured contention (the attempts' wall over
their CPU seconds: other tenants of this machine slow every task alike), and beside the
"replay": the same graph scheduled with each task's actual wall seconds (its attempt's), which
tells the scheduling model's error from the per-task estimate's.

    PYTHONPATH=src .venv/bin/python bench/estimate_ai.py [--work /tmp/wanhe-bench-estimate-ai] \
        [--gen-only | --story-only] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SPEC = """seed: 7
threads: 1
shots:
  - {name: fox, model: tiny-sd, prompt: a red fox in the snow, size: 64x64, candidates: 8,
     steps: 10}
"""


def _wanhe(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([PYTHON, "-m", "wanhe.cli", *args], env=env, capture_output=True,
                          text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"wanhe {' '.join(args)} failed: {done.stderr.strip()[-600:]}")
    return done.stdout


def _actual(db: Path, kind: str) -> dict[str, dict[str, float]]:
    """CPU and metered core-seconds of every attempt of the last `kind` job, by task kind."""
    with sqlite3.connect(db) as conn:
        job = conn.execute("select max(id) from jobs where kind = ?", (kind,)).fetchone()[0]
        rows = conn.execute("select kind, sum(cpu_s), sum(cores * wall_s), count(*) from "
                            "attempts where job_id = ? group by kind", (job,)).fetchall()
    return {k: {"cpu_s": float(c or 0), "metered_s": float(m or 0), "attempts": n}
            for k, c, m, n in rows}


def _job_wall(db: Path, kind: str) -> tuple[float, float, float]:
    """The last `kind` job's wall (first attempt's start to last end), and its attempts'
    summed wall and CPU seconds."""
    with sqlite3.connect(db) as conn:
        job = conn.execute("select max(id) from jobs where kind = ?", (kind,)).fetchone()[0]
        first, last, wall, cpu = conn.execute(
            "select min(started_at), max(ended_at), sum(wall_s), sum(cpu_s) from attempts "
            "where job_id = ?", (job,)).fetchone()
    return float(last - first), float(wall or 0), float(cpu or 0)


def _replay(story: Path, db: Path, cores: int) -> float:
    """The story job's graph scheduled on 1 machine × `cores` with each task's actual wall."""
    from wanhe.config import Settings
    from wanhe.estimate.workers import GraphTask, graph_schedule
    from wanhe.story.checks import check_storyboard, local_models
    from wanhe.story.load import load_storyboard
    from wanhe.story.plan import Layout, compile_story

    with sqlite3.connect(db) as conn:
        job = conn.execute("select max(id) from jobs where kind = 'story'").fetchone()[0]
        walls = dict(conn.execute(
            "select t.key, sum(a.wall_s) from attempts a join tasks t on t.id = a.task_id "
            "where a.job_id = ? group by t.key", (job,)).fetchall())
    board = load_storyboard(story)
    facts = check_storyboard(board, story.parent, models=local_models(Settings().db_url))
    root = Path("/replay")
    specs = compile_story(board, story.parent, facts, Layout(root, root / "w", root / "c"))
    index = {t.key: i for i, t in enumerate(specs)}
    graph = [GraphTask(float(walls.get(t.key) or 0.0), tuple(index[d] for d in t.deps),
                       int(t.resources.cpus + 0.999), int(t.resources.gpus + 0.999))
             for t in specs]
    return graph_schedule(graph, 1, cores=cores)


def _timed(args: list[str], env: dict[str, str]) -> tuple[Any, float]:
    started = time.monotonic()
    out = _wanhe(args, env)
    return (json.loads(out) if "--json" in args else out), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/wanhe-bench-estimate-ai"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--story-only", action="store_true")
    parser.add_argument("--gen-only", action="store_true")
    args = parser.parse_args()
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "WANHE_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    db = work / "home" / "wanhe.db"

    if not args.story_only:
        _gen(work, env, db)
    if not args.gen_only:
        _story(work, env, db, args.workers)


def _gen(work: Path, env: dict[str, str], db: Path) -> None:
    subprocess.run([PYTHON, "-c", "import sys; from pathlib import Path; from wanhe.ai import "
                    "tiny; tiny.build('sd', Path(sys.argv[1]))", str(work / "sd")],
                   env=env, check=True, capture_output=True, timeout=600)
    _wanhe(["models", "add", "tiny-sd", str(work / "sd"), "--json"], env)
    spec = work / "spec.yaml"
    spec.write_text(SPEC)
    estimate, estimate_wall = _timed(["estimate", str(spec), "--json"], env)
    _, cached_wall = _timed(["estimate", str(spec), "--json"], env)
    _, run_wall = _timed(["gen", "run", str(spec), "-o", str(work / "gen"), "--json"], env)
    actual = _actual(db, "gen")
    history, _ = _timed(["estimate", str(spec), "--json"], env)
    shot = estimate["shots"][0]
    print(f"gen: {shot['candidates']} candidates × {shot['steps']} steps at {shot['size']} "
          f"(tiny-sd, CPU, 1 thread)")
    print(f"  estimate {estimate['seconds']:.2f} CPU-s (worker start "
          f"{estimate['worker_start_s']:.2f} s, cold {shot['cold_s']:.2f} s, "
          f"{shot['per_candidate_s']:.3f} s a candidate); probe {estimate['probe_s']:.2f} s, "
          f"command {estimate_wall:.1f} s wall; again (cached) {cached_wall:.1f} s")
    gen = actual["gen"]
    scoring = actual.get("gen_score", {}).get("cpu_s", 0.0)
    print(f"  actual gen tasks {gen['cpu_s']:.2f} CPU-s, {gen['metered_s']:.2f} metered "
          f"core-s ({run_wall:.1f} s wall); scoring {scoring:.2f} CPU-s; estimate/actual "
          f"{estimate['seconds'] / gen['cpu_s']:.2f}")
    print(f"  again after the run: {history['seconds']:.2f} CPU-s, "
          f"{history['shots'][0]['source']} of {history['shots'][0]['history_runs']} run(s)")


def _story(work: Path, env: dict[str, str], db: Path, workers: int) -> None:
    subprocess.run([PYTHON, str(ROOT / "examples" / "make_story.py"), str(work / "story")],
                   env=env, check=True, capture_output=True, timeout=600)
    story = work / "story" / "story.yaml"
    board, board_wall = _timed(["estimate", str(story), "--json"], env)
    _, again_wall = _timed(["estimate", str(story), "--json"], env)
    on_farm, _ = _timed(["estimate", str(story), "--json", "--machines", "1", "--cores",
                         str(workers)], env)
    _, render_wall = _timed(["story", "render", str(story), "--output", str(work / "reel"),
                             "--workers", str(workers), "-q"], env)
    made = _actual(db, "story")
    parts = {p["part"]: p for p in board["parts"]}
    groups = {"voices": ["voice"], "blender": ["render", "lipsync"],
              "assembly": ["clip", "reel", "track", "dub"]}
    print(f"story: examples/story ({board['reel_s']:.1f} s reel, {board['reel_frames']} "
          f"frames, {', '.join(board['languages'])}); estimate command {board_wall:.1f} s "
          f"wall, again {again_wall:.1f} s; render {render_wall:.1f} s wall on {workers} worker(s)")
    total_cpu = total_metered = 0.0
    for part, kinds in groups.items():
        cpu = sum(made.get(k, {}).get("cpu_s", 0.0) for k in kinds)
        metered = sum(made.get(k, {}).get("metered_s", 0.0) for k in kinds)
        total_cpu += cpu
        total_metered += metered
        print(f"  {part:9s} estimate {parts[part]['core_s']:6.2f} CPU-s   actual {cpu:6.2f} "
              f"CPU-s ({'+'.join(kinds)}), {metered:6.2f} metered core-s")
    print(f"  {'total':9s} estimate {board['core_s']:6.2f} CPU-s   actual {total_cpu:6.2f} "
          f"CPU-s, {total_metered:6.2f} metered core-s; estimate/actual "
          f"{board['core_s'] / total_cpu:.2f}")
    job_wall, task_wall, task_cpu = _job_wall(db, "story")
    replay = _replay(story, db, workers)
    farm = on_farm["farm"]
    stretch = task_wall / task_cpu if task_cpu else 1.0
    print(f"  wall      estimate {farm['wall_s']:6.2f} s on 1 machine × {workers} core(s) "
          f"({farm['tasks']} tasks); actual job {job_wall:6.2f} s; the attempts' wall / CPU "
          f"{stretch:.2f} (contention), so the estimate stretched {farm['wall_s'] * stretch:6.2f}"
          f" s: estimate/actual {farm['wall_s'] * stretch / job_wall:.2f}; replay of the "
          f"actual task walls {replay:6.2f} s ({replay / job_wall:.2f} of the job's)")


if __name__ == "__main__":
    main()
