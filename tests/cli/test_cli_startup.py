"""`wanhe --help` answers at once: importing the command line and printing any command's help
loads none of the heavy parts (Ray, torch, Blender, SQLAlchemy and the store, the simulator's
numpy, the HTTP client, rich's tables and bars, plugins). Checked on the loaded modules in a
fresh interpreter, not on a clock (speed is measured in bench/RESULTS.md)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from wanhe.cli.simulate import DEFAULT_SWEEP_TEXT

SRC = Path(__file__).resolve().parents[2] / "src"

# Top-level modules and wanhe modules that no `--help` may import.
HEAVY = ("ray", "torch", "bpy", "sqlalchemy", "alembic", "numpy", "httpx", "fastapi",
         "pydantic_settings", "diffusers", "PIL", "OpenImageIO", "openjd")
HEAVY_PREFIXES = ("rich.table", "rich.progress", "rich.console", "typer.rich_utils",
                  "wanhe.store", "wanhe.engine", "wanhe.plugins", "wanhe.sim", "wanhe.api",
                  "wanhe.config", "wanhe.sched.policy", "wanhe.localrender", "wanhe.runs",
                  "wanhe.openjd", "wanhe.blender", "wanhe.ai", "wanhe.story")

HELPS = [["--help"], ["render", "--help"], ["run", "--help"], ["serve", "--help"],
         ["submit", "--help"], ["simulate", "--help"], ["story", "--help"],
         ["story", "render", "--help"], ["gen", "run", "--help"], ["models", "--help"],
         ["project", "--help"], ["token", "--help"], ["addon", "--help"], ["jobs", "--help"]]

PROBE = """
import json, sys
from wanhe.cli.main import app
for argv in json.loads(sys.argv[1]):
    try:
        app(argv, prog_name="wanhe")
    except SystemExit as exc:
        assert exc.code in (0, None), (argv, exc.code)
print(json.dumps(sorted(sys.modules)))
"""


def test_help_imports_nothing_heavy() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(HELPS)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded
             if m.split(".")[0] in HEAVY or m.startswith(HEAVY_PREFIXES)]
    assert heavy == [], f"`wanhe --help` imported {heavy}"


def test_help_lists_every_command_with_its_summary() -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-m", "wanhe.cli", "--help"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    for command in ("render", "run", "serve", "submit", "simulate", "story", "gen", "models"):
        assert f"  {command} " in done.stdout
    assert "Run an OpenJD job template" in done.stdout


def test_simulate_default_sweep_matches_the_simulator() -> None:
    from wanhe.sim.study import DEFAULT_SWEEP

    assert ",".join(str(m) for m in DEFAULT_SWEEP) == DEFAULT_SWEEP_TEXT
