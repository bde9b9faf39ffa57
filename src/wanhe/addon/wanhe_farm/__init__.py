"""wanhe farm — a Blender add-on that submits the open scene to a wanhe render farm, watches
its jobs and brings the frames back, without leaving Blender.

A Blender 4.2+ extension (blender_manifest.toml, the bundled blender-asset-tracer wheel
installed by Blender) that also loads as a legacy add-on (bl_info; the wheels in `wheels/`
put on sys.path) in older Blenders. It talks to the farm over plain HTTP and uses nothing
from wanhe's own environment.

Only `register()` imports bpy: the pure modules (farm, shared, download, plan, submit,
background, state) import anywhere.
"""

import sys
from pathlib import Path

bl_info = {
    "name": "wanhe farm",
    "author": "wanhe",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Properties › Output › wanhe farm",
    "description": "Submit the scene to a wanhe farm, watch its jobs, bring the frames back",
    "category": "Render",
}

WHEELS = Path(__file__).resolve().parent / "wheels"


def bundled_wheels_on_path() -> list[str]:
    """Make the bundled pure-Python wheels importable where Blender did not install them (a
    legacy add-on install, or Blender < 4.2); the paths added."""
    try:
        import blender_asset_tracer  # noqa: F401  (installed by Blender from the manifest)

        return []
    except ImportError:
        pass
    added = [str(whl) for whl in sorted(WHEELS.glob("*.whl")) if str(whl) not in sys.path]
    sys.path.extend(added)  # a py3-none-any wheel imports straight from its zip
    return added


def register() -> None:
    bundled_wheels_on_path()
    from . import ops, props, ui

    props.register()
    ops.register()
    ui.register()


def unregister() -> None:
    from . import ops, props, ui

    ui.unregister()
    ops.unregister()
    props.unregister()
