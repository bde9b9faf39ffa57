"""What every `wanhe` command shares: the two consoles, the one-line error-and-exit, the
`--db` store and `--server` client openers, JSON-or-table output and the progress bars' frame.

Errors are one line naming the problem and the fix, exit 2 (1 for a job that ran and failed),
never a traceback.
"""


import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, cast

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, ProgressColumn
    from rich.table import Table

    from wanhe.api.client import Client
    from wanhe.store.store import Store


# Set by a command once all it started is stopped and its outputs and messages are written:
# the process may then end without the interpreter's teardown of every module it imported
# (0.1-0.2 s after a `wanhe render` or `wanhe run`, the user waiting on it for nothing).
_CLEAN = threading.Event()


def finished_cleanly() -> None:
    """Say that this command has stopped all it started and written all it says
    (`wanhe.cli.main.main` then ends the process at once)."""
    _CLEAN.set()


def ended_cleanly() -> bool:
    return _CLEAN.is_set()


class _LazyConsole:
    """A rich Console made on first use: `wanhe --help` never imports rich's console."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None
        self._columns: str | None = None

    @property
    def console(self) -> "Console":
        # rich reads COLUMNS once, when a Console is made: one made again when it changes
        # keeps a command run in-process (an embedding, the tests' CliRunner) at its width
        columns = os.environ.get("COLUMNS")
        if self._console is None or columns != self._columns:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
            self._columns = columns
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


# Typed as consoles: every attribute reaches the real one (`.console` where one is passed on).
err: "Console" = cast("Console", _LazyConsole(stderr=True))  # progress, notes and errors
out: "Console" = cast("Console", _LazyConsole(stderr=False))  # results: what a script reads


def real_console(console: "Console") -> "Console":
    """The Console behind a lazy one (rich's Live and Progress want the object itself)."""
    return console.console if isinstance(console, _LazyConsole) else console  # type: ignore[attr-defined]

ServerOpt = Annotated[
    str | None, typer.Option("--server", envvar="WANHE_SERVER",
                             help="farm URL; default http://127.0.0.1:8640")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="WANHE_TOKEN", help="API token")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
DbOpt = Annotated[
    str | None, typer.Option("--db", help="database URL; default ~/.wanhe/wanhe.db (WANHE_DB)")
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: MESSAGE` on stderr and leave with `code`."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def open_store_or_fail(db: str | None, *, migrate: bool = True) -> "Iterator[Store]":
    """The `--db` database (default: the settings'), or one line saying why it cannot open;
    a StoreError inside the block becomes one line too."""
    from wanhe.config import Settings
    from wanhe.storage import redact
    from wanhe.store.store import DatabaseUnavailable, Store, StoreError

    settings = Settings().overridden(db=db)
    try:
        store = Store(settings.db_url, migrate=migrate)
    except DatabaseUnavailable as exc:  # its own line names --db, password hidden
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot open the database {redact(settings.db_url)}: "
             f"{type(exc).__name__}: {exc}")
    try:
        yield store
    except StoreError as exc:
        fail(str(exc))
    finally:
        store.dispose()


@contextmanager
def client(server: str | None, token: str | None) -> "Iterator[Client]":
    """An API client of the farm (default: the settings' server and token); an API error
    inside the block, or a file an upload cannot read, becomes one line."""
    from wanhe.api.client import Client
    from wanhe.config import Settings
    from wanhe.transfer.errors import TransferError

    settings = Settings()
    try:
        with Client(server or settings.server, token or settings.token) as c:
            yield c
    except TransferError as exc:  # ApiError, PackError
        fail(str(exc))


def print_json_line(data: Any) -> None:
    """`data` as one JSON line on stdout (`-q` output for scripts): whatever the terminal's
    width, never read as rich markup, and without importing rich."""
    import sys

    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def emit(data: Any, as_json: bool, table: "Callable[[Any], Table] | Table | None" = None) -> None:
    """`data` as JSON on stdout (with --json, or with no table to show), else its table."""
    if as_json or table is None:
        out.print_json(json.dumps(data, default=str))
    else:
        out.print(table(data) if callable(table) else table)


class Bars:
    """Progress bars on stderr driven by the dispatcher's task events.

    Each command shows its own bars (`start`, `on_event`); every one of them says a retried,
    lost or failed task in one line above the bars, and stops the same way.
    """

    def __init__(self, quiet: bool, *columns: "str | ProgressColumn") -> None:
        self.quiet = quiet
        self._columns = columns
        self._progress: Progress | None = None

    @property
    def progress(self) -> "Progress":
        """Rich's bars, made at first use: `wanhe render` starts Blender before it pays for
        importing them."""
        if self._progress is None:
            from rich.progress import Progress

            self._progress = Progress(*self.columns(), console=real_console(err),
                                      disable=self.quiet)
        return self._progress

    def columns(self) -> "tuple[str | ProgressColumn, ...]":
        """The bars' columns (a subclass may make them only when the bars are made)."""
        return self._columns

    def note_trouble(self, event: Any, where: str = "") -> bool:
        """Print a retried, lost or failed task's line; whether the event was one."""
        if event.kind not in ("retry", "lost", "failed"):
            return False
        self.progress.console.print(f"[yellow]{event.kind}[/] {event.task.key}{where}: "
                                    f"{event.message}", highlight=False)
        return True

    def stop(self) -> None:
        if self._progress is not None:  # never shown: nothing to stop
            self._progress.stop()


def interrupted(bars: Bars) -> NoReturn:
    """Ctrl-C during a local run: the job stays in the database; running again resumes it."""
    bars.stop()
    err.print("interrupted — run the same command again to resume")
    raise typer.Exit(130) from None
