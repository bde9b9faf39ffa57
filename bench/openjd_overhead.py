"""`wanhe run` beside `openjd run` on the same OpenJD template, side by side in one run: wall
time of each (fresh process, fresh database), median of N rounds, the runners alternating so
both see the same load, and the CPU seconds of each runner's whole process tree (less bent by
the load than wall time). `openjd` is the reference runner in its own virtualenv (openjd-cli
0.8 on openjd-model 0.13, tests/openjd/_reference.py; built on first use). With
--baseline-src, `wanhe run` of another source tree too (e.g. a `git worktree` of the
previous main); with --baseline-python, this tree under another interpreter too (e.g. a
virtualenv on another openjd-model line).

    .venv/bin/python bench/openjd_overhead.py [--rounds 3] [--tasks 20] [--enter-s 0]
                                              [--baseline-src /work/wt/base/src] [--bytecode]
                                              [--baseline-python OTHER_VENV/bin/python]

--bytecode: every runner reads and writes compiled bytecode in a fresh PYTHONPYCACHEPREFIX
(PYTHONDONTWRITEBYTECODE unset) after one untimed round, as an installed wanhe has its .pyc
files; without it the environment decides (a source checkout under PYTHONDONTWRITEBYTECODE=1
compiles every wanhe module on every run).

The template: TASKS trivial tasks (`echo N > OUT/N.txt`); with --enter-s S > 0 they sit
behind a job environment whose onEnter sleeps S seconds (a DCC loading).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "src"
sys.path.insert(0, str(ROOT))

from tests.openjd._reference import reference_venv  # noqa: E402


def template(tasks: int, enter_s: float) -> str:
    env = ""
    if enter_s > 0:
        env = f"""jobEnvironments:
- name: Dcc
  script:
    actions:
      onEnter: {{command: bash, args: ["-c", "mkdir -p {{{{Param.Out}}}}; sleep {enter_s}"]}}
"""
    run = "mkdir -p {{Param.Out}}; echo {{Task.Param.F}} > {{Param.Out}}/{{Task.Param.F}}.txt"
    return f"""specificationVersion: 'jobtemplate-2023-09'
name: Bench
parameterDefinitions:
- {{name: Out, type: PATH, objectType: DIRECTORY, dataFlow: OUT}}
{env}steps:
- name: Work
  parameterSpace:
    taskParameterDefinitions:
    - {{name: F, type: INT, range: "1-{tasks}"}}
  script:
    actions:
      onRun: {{command: bash, args: ["-c", "{run}"]}}
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


CPU: dict[str, list[float]] = {}  # runner -> CPU seconds of its whole process tree, per round


def timed(argv: list[str], env: dict[str, str], out: Path, tasks: int,
          name: str = "") -> float:
    shutil.rmtree(out, ignore_errors=True)
    cpu0 = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    CPU.setdefault(name, []).append(_children_cpu() - cpu0)
    made = len(list(out.glob("*.txt"))) if out.is_dir() else 0
    if done.returncode != 0 or made != tasks:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}, {made}/{tasks} outputs):\n"
                         f"{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--enter-s", type=float, default=0.0)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--baseline-python", type=Path,
                        help="also `wanhe run` this source tree under another interpreter, e.g. "
                             "a virtualenv on another openjd-model line")
    parser.add_argument("--bytecode", action="store_true",
                        help="bytecode cached for every runner, after an untimed round")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wanhe-openjd-bench-"))
    base_env = dict(os.environ)
    if args.bytecode:
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        base_env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    job = work / "job.yaml"
    job.write_text(template(args.tasks, args.enter_s))
    # runner name -> (interpreter, source tree)
    trees = {"wanhe run": (Path(sys.executable), HERE)}
    if args.baseline_src:
        trees = {"wanhe run (baseline)": (Path(sys.executable), args.baseline_src.resolve()),
                 **trees}
    if args.baseline_python:
        trees = {f"wanhe run ({args.baseline_python})": (args.baseline_python, HERE), **trees}
    times: dict[str, list[float]] = {"openjd run": [], **{name: [] for name in trees}}
    openjd = reference_venv() / "bin" / "openjd"
    try:
        for n in range(-1 if args.bytecode else 0, args.rounds):  # -1: the untimed round
            out = work / "out"
            wall = timed([str(openjd), "run", str(job), "-p", f"Out={out}"],
                         base_env, out, args.tasks, "openjd run" if n >= 0 else "")
            if n >= 0:
                times["openjd run"].append(wall)
            for name, (python, src) in trees.items():
                env = {**base_env, "PYTHONPATH": str(src), "WANHE_HOME": str(work / "home")}
                wall = timed(
                    [str(python), "-m", "wanhe.cli", "run", "--template", str(job),
                     "-p", f"Out={out}", "-q", "--db", f"sqlite:///{work}/{n}-{len(name)}.db"],
                    env, out, args.tasks, name if n >= 0 else "")
                if n >= 0:
                    times[name].append(wall)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(f"{args.tasks} trivial tasks" + (f" behind a {args.enter_s:g} s onEnter"
                                            if args.enter_s > 0 else "")
          + f", median of {args.rounds} (min–max), load average {os.getloadavg()[0]:.1f}\n")
    base = statistics.median(times["openjd run"])
    cpu_base = statistics.median(CPU["openjd run"])
    print("| runner | wall s | × openjd run | CPU s, all its processes | × |")
    print("|---|---:|---:|---:|---:|")
    for name, walls in times.items():
        med = statistics.median(walls)
        cpu = statistics.median(CPU[name])
        print(f"| `{name}` | {med:.2f} ({min(walls):.2f}–{max(walls):.2f}) | {med / base:.2f} "
              f"| {cpu:.2f} | {cpu / cpu_base:.2f} |")


if __name__ == "__main__":
    main()
