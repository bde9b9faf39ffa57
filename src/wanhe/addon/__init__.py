"""The Blender add-on: `wanhe_farm/` is what goes into the extension zip (pure standard
library, runs inside an artist's Blender); `build.py` writes the zip;
`wanhe.cli.addon` is `wanhe addon build`."""
