"""Where a `wanhe run` (or any wanhe command) spends its wall time: the command run in this
process with a timestamp at each phase of a local OpenJD run and the engine's log lines.

    PYTHONPATH=src .venv/bin/python bench/run_trace.py run --template job.yaml -p Out=/tmp/o -q

(bench/openjd_overhead.py writes a suitable 20-task template.) Timestamps are ms since start.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

T0 = time.perf_counter()
PHASES = [("wanhe.runs.openjd", "make_plan"), ("wanhe.runs.openjd", "compile_plan"),
          ("wanhe.runs.local", "open_or_resume"), ("wanhe.runs.local", "local_workers"),
          ("wanhe.runs.local", "make_dispatcher"), ("wanhe.runs.local", "run_to_end")]


def mark(what: str) -> None:
    print(f"{(time.perf_counter() - T0) * 1000:6.0f} ms MARK {what}", file=sys.stderr)


def timed(module: str, name: str) -> None:
    found = importlib.import_module(module)
    original: Callable[..., Any] = getattr(found, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(f"{module}.{name} begin")
        try:
            return original(*args, **kwargs)
        finally:
            mark(f"{module}.{name} end")

    setattr(found, name, wrapper)


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(relativeCreated)6.0f ms %(threadName)s %(name)s: %(message)s")
    mark("start")
    cli = importlib.import_module("wanhe.cli.main")
    mark("CLI imported")
    importlib.import_module("wanhe.runs.openjd")
    mark("wanhe.runs.openjd imported")
    for module, name in PHASES:
        timed(module, name)
    sys.argv = ["wanhe", *sys.argv[1:]]
    try:
        cli.main()
    finally:
        mark("end")


if __name__ == "__main__":
    main()
