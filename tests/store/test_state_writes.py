"""Every store function that UPDATEs a job's or a task's state goes through the state machine:
it calls `check_job`/`check_task`, or its UPDATE is limited to the legal source states
(`sources_of`/`job_sources_of`). A function-level check over the source (ast): a new write
with neither fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import wanhe.store

STORE = Path(wanhe.store.__file__).parent
GUARDS = {"check_task", "check_job", "sources_of", "job_sources_of"}


def _updates_state(node: ast.AST) -> bool:
    """`update(…)….values(state=…)` (an insert's initial state is no transition)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values" and any(k.arg == "state" for k in node.keywords)):
        return False
    return any(isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "update"
               for c in ast.walk(node.func.value))


def unchecked_state_writes() -> list[str]:
    found: list[str] = []
    for path in sorted(STORE.glob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(fn, ast.FunctionDef):
                continue
            writes = [n.lineno for n in ast.walk(fn) if _updates_state(n)]
            names = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name)}
            if writes and not names & GUARDS:
                found.append(f"{path.name}:{fn.name} (line {', '.join(map(str, writes))})")
    return found


def test_every_state_update_goes_through_the_state_machine() -> None:
    assert unchecked_state_writes() == [], "state written without check_job/check_task"


def test_the_walk_finds_state_updates() -> None:
    source = (STORE / "jobs.py").read_text(encoding="utf-8")
    assert sum(_updates_state(n) for n in ast.walk(ast.parse(source))) >= 5
