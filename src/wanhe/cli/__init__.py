"""The `wanhe` command line, every command in this package: `main` (the root app and
`wanhe render`), `service` (serve, submit, jobs …), `gen` (models, gen), `story`, `openjd`
(run), `simulate`, `addon`; `common` holds what they share (consoles, `fail`, the `--db` and
`--server` openers, progress bars)."""

from wanhe.cli.main import app, main

__all__ = ["app", "main"]
