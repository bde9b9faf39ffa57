"""The registries answer a lookup of one kind from the module named after it (plus the
plugins), so a local run of one kind does not import every job type's and executor's
libraries; a kind living elsewhere, or a list of every kind, still loads them all."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from wanhe.jobtypes.registry import find_job_type, job_types
from wanhe.engine.executors.registry import executor_class
assert find_job_type("openjd").kind == "openjd"
assert executor_class("openjd").__module__ == "wanhe.engine.executors.openjd"
assert executor_class("noop").__module__ == "wanhe.engine.executors.noop"
ours = ("wanhe.jobtypes.", "wanhe.engine.executors.")
loaded = sorted(m for m in sys.modules if m.startswith(ours))
print(" ".join(loaded))
assert executor_class("render").__module__ == "wanhe.engine.executors.blender"  # not render.py
assert len(job_types()) > 1
"""


def test_a_lookup_of_one_kind_imports_that_kinds_modules_only() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "wanhe.engine.executors.base", "wanhe.engine.executors.noop",
        "wanhe.engine.executors.openjd", "wanhe.engine.executors.registry",
        "wanhe.jobtypes.base", "wanhe.jobtypes.openjd", "wanhe.jobtypes.registry"]
