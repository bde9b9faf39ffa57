"""Where a `wanhe run` or `wanhe render` (or any wanhe command) spends its wall time: the
command run in this process with a timestamp at each phase and the engine's log lines.

    PYTHONPATH=src .venv/bin/python bench/run_trace.py run --template job.yaml -p Out=/tmp/o -q
    PYTHONPATH=src .venv/bin/python bench/run_trace.py render scene.blend --frames 1 -q

(bench/openjd_overhead.py writes a suitable 20-task template.) Timestamps are ms since this
process started (the interpreter's own start included, read from /proc), with the process's
CPU ms so far; the phases of the command's kind are marked at their begin and end, from
whichever thread runs them, where the command imports their modules.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def _process_age_s() -> float:
    """Seconds since this process started (before the interpreter's own start-up)."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


T0 = time.perf_counter() - _process_age_s()

RUN_PHASES = [("wanhe.openjd.hostpool", "start_ahead"), ("wanhe.openjd.hostpool", "plan_ahead"),
              ("wanhe.openjd.hostpool", "take"),
              ("wanhe.runs.openjd", "make_plan"), ("wanhe.runs.openjd", "compile_plan"),
              ("wanhe.runs.local", "open_or_resume"), ("wanhe.runs.local", "local_workers"),
              ("wanhe.runs.local", "make_dispatcher"), ("wanhe.runs.local", "run_to_end")]
RENDER_PHASES = [("wanhe.localrender", "precheck"), ("wanhe.localrender", "prepare"),
                 ("wanhe.blender.inspect", "check_blend_file"),
                 ("wanhe.blender.inspect", "trace_dependencies"),
                 ("wanhe.store.store", "Store.__init__"),
                 ("wanhe.localrender", "open_or_resume_job"),
                 ("wanhe.runs.local", "make_dispatcher"), ("wanhe.runs.local", "run_to_end"),
                 ("wanhe.engine.handles", "LocalWorker.__init__"),
                 ("wanhe.engine.handles", "LocalWorker.kill"),
                 ("wanhe.engine.executors.blender", "BlenderExecutor.process"),
                 ("wanhe.engine.executors.blender", "BlenderExecutor.close"),
                 ("wanhe.blender.runner", "BlenderProcess.start"),
                 ("wanhe.blender.runner", "BlenderProcess.inspect"),
                 ("wanhe.blender.runner", "BlenderProcess.render"),
                 ("wanhe.blender.runner", "BlenderProcess.close"),
                 ("wanhe.engine.frame_steps", "run_assemble"),
                 ("wanhe.engine.frame_steps", "run_preview"),
                 ("wanhe.engine.frame_steps", "run_denoise"),
                 ("wanhe.localrender", "write_report"),
                 ("wanhe.cli.main", "_end_now")]  # its begin: the process ends (os._exit)


def mark(what: str) -> None:
    """Wall ms since the process started, and this process's CPU ms so far (every thread; a
    figure the machine's load stretches less than the wall)."""
    where = threading.current_thread().name
    print(f"{(time.perf_counter() - T0) * 1000:6.0f} ms (cpu {time.process_time() * 1000:5.0f}) "
          f"MARK [{where}] {what}", file=sys.stderr)


def timed(module: str, name: str) -> None:
    """Mark the begin and end of `module.name` (`Class.method` for a method)."""
    owner: Any = sys.modules[module]
    *path, attr = name.split(".")
    for part in path:
        owner = getattr(owner, part, None)
    original: Callable[..., Any] | None = getattr(owner, attr, None)
    if original is None:  # not in this tree (an older checkout traced with PYTHONPATH)
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(f"{module}.{name} begin")
        try:
            return original(*args, **kwargs)
        finally:
            mark(f"{module}.{name} end")

    setattr(owner, attr, wrapper)


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Wraps the phases of a module once the command itself imports it: importing them here
    first would move their import time out of the phases that pay it."""

    def __init__(self, phases: list[tuple[str, str]]) -> None:
        self.phases = phases

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        names = [name for module, name in self.phases if module == fullname]
        if not names:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            for name in names:
                timed(fullname, name)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def main() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(relativeCreated)6.0f ms %(threadName)s %(name)s: %(message)s")
    logging._startTime = time.time() - (time.perf_counter() - T0)  # type: ignore[attr-defined]
    mark("trace start (interpreter up)")
    cli = importlib.import_module("wanhe.cli")  # light: `main` starts things before parsing
    mark("CLI package imported")
    atexit.register(mark, "interpreter exit")
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    phases = RENDER_PHASES if command == "render" else RUN_PHASES
    for module, name in phases:
        if module in sys.modules:
            timed(module, name)
    sys.meta_path.insert(0, _WrapOnImport([p for p in phases if p[0] not in sys.modules]))
    sys.argv = ["wanhe", *sys.argv[1:]]
    try:
        cli.main()
    finally:
        mark("command returned")


if __name__ == "__main__":
    main()
