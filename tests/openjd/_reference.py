"""The reference OpenJD runner the tests compare `wanhe run` with: `openjd` from openjd-cli
0.8.0, the newest openjd-cli. It requires openjd-model/openjd-sessions 0.13 while wanhe runs
on 0.14, so it lives in a virtualenv of its own under ~/.cache/wanhe-test/ (built once from
PyPI by `make test-services` or the first test that needs it) and runs as a program: nothing
in wanhe or its tests imports openjd-cli."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests._cached_venv import VenvUnavailable, cached_venv

# Exact pins: the reference does not move under the tests' feet.
REQUIREMENTS = ["openjd-cli==0.8.0", "openjd-model==0.13.0", "openjd-sessions==0.13.0"]
VENV_NAME = "openjd-cli-venv-0.8.0-model-0.13.0"


def reference_venv() -> Path:
    """The reference runner's virtualenv (VenvUnavailable where it cannot be made)."""
    return cached_venv(VENV_NAME, REQUIREMENTS)


def openjd_exe() -> str:
    """The reference `openjd` program; where its virtualenv cannot be made the test skips
    with the reason (and fails in CI, where the reference must run)."""
    import pytest  # here: bench/openjd_overhead.py imports this module without pytest

    try:
        return str(reference_venv() / "bin" / "openjd")
    except VenvUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(f"the reference runner (openjd-cli) cannot be installed: {exc}")


def reference_python(code: str, *args: object) -> object:
    """Run CODE in the reference's interpreter (its openjd packages, not wanhe's) with ARGS
    as JSON in sys.argv[1]; CODE prints one JSON value, which is returned."""
    python = Path(openjd_exe()).with_name("python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # its own packages only
    done = subprocess.run([str(python), "-c", code, json.dumps(list(args))], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
