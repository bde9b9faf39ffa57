"""The `wanhe` command line, every command in this package: `main` (the root app and
`wanhe render`), `service` (serve, submit, jobs …), `gen` (models, gen), `story`, `openjd`
(run), `simulate`, `addon`; `common` holds what they share (consoles, `fail`, the `--db` and
`--server` openers, progress bars); `early` what starts before the arguments are parsed."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["app", "main"]


def main() -> None:
    """The `wanhe` command."""
    from wanhe.cli.early import start_early

    start_early(sys.argv[1:])
    from wanhe.cli.main import main as run_command_line

    run_command_line()


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer app, imported on first use (`main` starts things first)
        from wanhe.cli.main import app

        return app
    raise AttributeError(f"module 'wanhe.cli' has no attribute {name!r}")
