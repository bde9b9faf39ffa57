"""How long the command line takes to answer `--help`: wall time of a fresh process, median of
N, for this tree and (with --baseline-src) another one, the runs alternating so both see the
same load; and what each imports (`python -X importtime`, the largest cumulative entries).

    .venv/bin/python bench/cli_startup.py [--runs 10] [--baseline-src /work/wt/base/src]
                                          [--importtime]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
COMMANDS = (["--help"], ["render", "--help"], ["run", "--help"], ["serve", "--help"])


def wall(src: Path, argv: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "wanhe.cli", *argv], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def importtime(src: Path, argv: list[str], top: int = 8) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "wanhe.cli", *argv],
                          env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:7.1f} ms {name}" for us, name in rows[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    trees = {"this": HERE}
    if args.baseline_src:
        trees = {"baseline": args.baseline_src.resolve(), "this": HERE}
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print("| command | " + " | ".join(f"{n} median (min–max) s" for n in trees) + " |")
    print("|---|" + "---|" * len(trees))
    for argv in COMMANDS:
        times: dict[str, list[float]] = {name: [] for name in trees}
        for src in trees.values():  # warm the bytecode caches
            wall(src, argv)
        for _ in range(args.runs):
            for name, src in trees.items():
                times[name].append(wall(src, argv))
        cells = [f"{statistics.median(t):.3f} ({min(t):.3f}–{max(t):.3f})"
                 for t in times.values()]
        print(f"| `wanhe {' '.join(argv)}` | " + " | ".join(cells) + " |")
    if args.importtime:
        for name, src in trees.items():
            print(f"\n{name}: largest cumulative imports of `wanhe render --help`")
            for row in importtime(src, ["render", "--help"]):
                print("    " + row)


if __name__ == "__main__":
    main()
