"""What `wanhe` starts before its command line is parsed: for `wanhe run` of an OpenJD
template, the session hosts' spawner (`wanhe.openjd.hostpool.start_ahead`), which imports
openjd and then plans the job and forks the hosts; for `wanhe render`, its first worker's
Blender (`wanhe.localrender.spawn_blender_early`), whose Python and bpy take as long to load
as a plain Blender's. Parsing needs typer and every command's module (tens of milliseconds),
and those starts are the longest things a short job waits for, so they come first.

Only a peek at the arguments, never their judge: anything it does not recognise for sure
(`--help`, `--kind`, a `--workers` that is not a number, a render's `--ray-address` or
`--export-openjd`) starts nothing, and the command then
starts the spawner itself after parsing, as it always did (`start_ahead` once per run).
"""

from __future__ import annotations

import os


def start_early(argv: list[str]) -> bool:
    """Start what the command `argv` (without the program's name) will need; whether
    anything was started."""
    if argv and argv[0] == "render":
        return _render(argv[1:])
    if not argv or argv[0] != "run":
        return False
    args = argv[1:]
    if any(a in ("--help", "-h", "--kind", "--options") or a.startswith(("--kind=", "--options="))
           for a in args):
        return False
    try:
        workers = _workers(args)
    except ValueError:
        return False
    from wanhe.openjd import hostpool

    return hostpool.start_ahead(workers or os.cpu_count() or 1) > 0


def _render(args: list[str]) -> bool:
    """`wanhe render`'s Blender (`wanhe.localrender.spawn_blender_early`), unless the command
    will not render here: help, an export, a cluster to join."""
    if any(a in ("--help", "-h", "--export-openjd", "--ray-address")
           or a.startswith(("--export-openjd=", "--ray-address=")) for a in args):
        return False
    blender = _value(args, "--blender")
    if blender == "":
        return False
    from wanhe.localrender import spawn_blender_early

    try:
        return spawn_blender_early(blender)
    except Exception:  # settings the command itself will explain, or no Blender to start
        return False


def _value(args: list[str], name: str) -> str | None:
    """The value given to option `name` (None: not given; "": given without one)."""
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1] if i + 1 < len(args) else ""
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _workers(args: list[str]) -> int | None:
    """The `--workers N` asked for (None: not given); ValueError when it is not a count."""
    for i, arg in enumerate(args):
        value = None
        if arg == "--workers":
            value = args[i + 1] if i + 1 < len(args) else ""
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
        if value is not None:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(value)
            return int(value)
    return None
