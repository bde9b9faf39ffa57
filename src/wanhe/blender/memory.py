"""How much memory one Blender render task needs, estimated from the scene's inspection.

A documented estimate with a floor, not a measurement (the sandbox's cgroup limit, set from it,
is the backstop; `peak_rss` of finished attempts shows what renders really took):

- **floor** 512 MiB: Blender, Cycles' kernels and Python, with an empty scene;
- **geometry**: 400 B per polygon of the scene's meshes (before modifiers): Blender's own
  mesh (vertices, loops, normals, UVs) and Cycles' copy with its BVH, a quad being two
  triangles; the 0.76 M-polygon demo scene gets 290 MiB;
- **the .blend**: twice its size on disk (its data blocks, expanded when loaded);
- **textures**: 8 × their files' size (a PNG or JPEG decompresses to 4 bytes a pixel, 4–10 ×
  its file);
- **pixels**: 64 B per pixel of the tile rendered (with its overscan): Cycles' render buffer
  of the combined, albedo, normal and denoising passes in float, and the EXR written from it.
"""

from __future__ import annotations

FLOOR = 512 << 20
BYTES_PER_POLYGON = 400
BLEND_FACTOR = 2
TEXTURE_FACTOR = 8
BYTES_PER_PIXEL = 64
TEXTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".tif", ".tiff", ".tga", ".bmp", ".hdr",
                    ".webp", ".dds", ".psd", ".jp2", ".tx")


def render_memory(*, polygons: int, blend_bytes: int, texture_bytes: int, pixels: int) -> int:
    """Bytes one render task of this scene reserves: see the module doc."""
    return (FLOOR + polygons * BYTES_PER_POLYGON + blend_bytes * BLEND_FACTOR
            + texture_bytes * TEXTURE_FACTOR + pixels * BYTES_PER_PIXEL)
