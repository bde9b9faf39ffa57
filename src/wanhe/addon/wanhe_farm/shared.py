"""The code the add-on shares with wanhe's CLI, from one source: the package `wanhe.transfer`
(the one-line wording of a farm's refusals, packing a scene with blender-asset-tracer,
hashing, uploading what the farm lacks) and the farm's frame and tile syntax
(`wanhe.plan.frames`, `wanhe.plan.tiles`, copied as `wanhe_farm/_plan/`).

`wanhe addon build` copies that package's files byte for byte into the zip, as
`wanhe_farm/_transfer/`: the installed add-on imports that copy and needs nothing but Python's
standard library and BAT. In wanhe's source tree there is no copy (so none to keep in step):
the add-on, imported there as `wanhe.addon.wanhe_farm` by the tests, imports the package
itself. Either way the add-on runs the same file.
"""

from pathlib import Path
from typing import TYPE_CHECKING

COPY = "_transfer"  # the copies' folder names in the zip (build.py writes them)
PLAN_COPY = "_plan"  # wanhe.plan's frames and tiles: the farm's frame and tile syntax

if TYPE_CHECKING or not (Path(__file__).resolve().parent / COPY).is_dir():
    from wanhe.plan import frames, tiles
    from wanhe.transfer import errors, hashing, pack, refusal
else:
    from ._plan import frames, tiles
    from ._transfer import errors, hashing, pack, refusal

__all__ = ["errors", "frames", "hashing", "pack", "refusal", "tiles"]
