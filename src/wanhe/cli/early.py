"""What `wanhe` starts before its command line is parsed: for `wanhe run` of an OpenJD
template, the session hosts' spawner (`wanhe.openjd.hostpool.start_ahead`), which imports
openjd and then plans the job and forks the hosts. Parsing needs typer and every command's
module (a few tens of milliseconds) and the spawner's import is the longest thing a short run
waits for, so it starts first.

Only a peek at the arguments, never their judge: anything it does not recognise for sure
(`--help`, `--kind`, a `--workers` that is not a number) starts nothing, and the command then
starts the spawner itself after parsing, as it always did (`start_ahead` once per run).
"""

from __future__ import annotations

import os


def start_early(argv: list[str]) -> bool:
    """Start what the command `argv` (without the program's name) will need; whether
    anything was started."""
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
