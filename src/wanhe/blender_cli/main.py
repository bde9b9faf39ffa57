"""The `blender` command's entry point: parse, refuse what the farm forbids, then render."""

from __future__ import annotations

import os
import sys

from wanhe.blender_cli.args import HELP, PYTHON_ENV, CliError, parse_args


def python_allowed(env: dict[str, str] | None = None) -> bool:
    """Whether the farm lets Blender run Python scripts (`--python`, `--python-expr`,
    `--python-text`): WANHE_ALLOW_BLENDER_PYTHON=1 (or true/yes) in the environment."""
    value = (os.environ if env is None else env).get(PYTHON_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bpy")
    except PackageNotFoundError:  # pragma: no cover - bpy is a dependency
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run Blender's command line `argv` (without the program name); Blender's exit codes:
    0 when everything ran, 1 on an error (a bad argument, an unreadable file, a failed render)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        parsed = parse_args(args)
    except CliError as e:
        sys.stderr.write(f"Error: {e}\n")
        return 1
    if parsed.show_help:
        sys.stdout.write(HELP)
        return 0
    if parsed.show_version:
        sys.stdout.write(f"Blender {_version()} (wanhe: the bpy wheel)\n")
        return 0
    scripts = parsed.runs_python
    if scripts and not python_allowed():
        flags = ", ".join(sorted({a.flag for a in scripts}))
        sys.stderr.write(
            f"Error: {flags} refused: this farm does not let Blender run Python scripts — "
            f"a farm administrator can allow it with {PYTHON_ENV}=1 on the workers "
            "(scripts embedded in .blend files never run either way)\n"
        )
        return 1
    for warning in parsed.warnings:
        sys.stderr.write(f"Warning: {warning}\n")
    sys.stdout.write(f"Blender {_version()} (wanhe: the bpy wheel, auto-run scripts off)\n")
    sys.stdout.flush()
    from wanhe.blender_cli.runner import execute

    return execute(parsed, args)


def cli() -> None:
    """The `wanhe-blender` console script."""
    sys.exit(main())
