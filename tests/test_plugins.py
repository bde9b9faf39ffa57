"""Plugins (wanhe.plugins): modules named by WANHE_PLUGINS or entry points load once; one
that cannot be imported stops the process with its name, never a half-working farm."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wanhe.plugins import ENV_VAR, ImportOnce, PluginError, plugin_modules


def test_plugin_modules_come_from_the_environment_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_VAR, " studio.tools , studio.tools,other ")
    assert plugin_modules()[-2:] == ["studio.tools", "other"]


def test_a_plugin_that_does_not_import_names_itself_and_the_fix() -> None:
    imports = ImportOnce(lambda: ["wanhe_no_such_plugin"], plugins=True)
    with pytest.raises(PluginError, match="wanhe plugin 'wanhe_no_such_plugin' could not be "
                                          r"imported \(ModuleNotFoundError"):
        imports.ensure()


def test_imports_happen_once() -> None:
    seen: list[int] = []
    imports = ImportOnce(lambda: seen.append(1) or ["json"])  # type: ignore[func-returns-value]
    imports.ensure()
    imports.ensure()
    assert seen == [1]


def test_serve_with_a_broken_plugin_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "WANHE_HOME": str(tmp_path), ENV_VAR: "wanhe_no_such_plugin"}
    result = subprocess.run(
        [sys.executable, "-m", "wanhe.cli", "serve", "--port", "0", "--storage",
         str(tmp_path / "s")],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert result.returncode != 0
    assert "wanhe plugin 'wanhe_no_such_plugin' could not be imported" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_plugin_fails_every_lookup_not_only_the_first() -> None:
    plugins = ImportOnce(lambda: ["wanhe_no_such_plugin"], plugins=True)
    builtins = ImportOnce(lambda: ["json"], after=plugins)
    for _ in range(2):  # the second lookup must not find a farm silently without the plugin
        with pytest.raises(PluginError):
            builtins.ensure()


def test_a_lookup_of_one_kind_imports_its_own_module_and_the_plugins_only() -> None:
    seen: list[str] = []
    plugins = ImportOnce(lambda: seen.append("plugins") or ["json"])  # type: ignore[func-returns-value]
    builtins = ImportOnce(lambda: ["json", "wanhe_no_such_module"], after=plugins)
    builtins.ensure_one("json", lambda: True)  # found in its own module: the rest waits
    assert seen == ["plugins"]
    with pytest.raises(ModuleNotFoundError):  # not found there: every module, as ensure()
        builtins.ensure_one("json", lambda: False)


def test_a_broken_plugin_fails_a_lookup_of_one_kind_too() -> None:
    plugins = ImportOnce(lambda: ["wanhe_no_such_plugin"], plugins=True)
    builtins = ImportOnce(lambda: ["json"], after=plugins)
    with pytest.raises(PluginError):
        builtins.ensure_one("json", lambda: True)


def test_plugins_looked_up_ahead_are_the_ones_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "wanhe_no_such_plugin")
    plugins = ImportOnce(plugin_modules, plugins=True)
    plugins.look_up_ahead()
    for _ in range(2):  # a failed import is looked up afresh, and fails again
        with pytest.raises(PluginError, match="wanhe_no_such_plugin"):
            plugins.ensure()
    monkeypatch.setenv(ENV_VAR, "json")  # fixed: the next lookup finds the fix
    plugins.ensure()
