"""The Blender add-on: `wanhe_farm/` is what goes into the extension zip (pure standard
library, runs inside an artist's Blender); `build.py` writes the zip; `cli.py` is
`wanhe addon build`."""
