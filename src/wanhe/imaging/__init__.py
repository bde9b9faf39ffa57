"""Pure image work on rendered frames: EXR I/O, tile assembly, sample-chunk merge, OIDN
denoise, previews, automatic quality checks and preview videos. No Blender needed.

Import from the modules (``wanhe.imaging.exr``, ``.assemble``, ``.denoise``, ``.preview``,
``.qc``, ``.video``, ``.atomic``); the names below are re-exported for convenience.
"""

from wanhe.imaging.assemble import (
    TilePlacement,
    assemble_frame,
    assemble_tiles,
    merge_frames,
    merge_sample_chunks,
)
from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.denoise import DenoiseStats, denoise_frame
from wanhe.imaging.errors import (
    AssemblyError,
    DenoiseError,
    ExrReadError,
    ImagingError,
    OutputError,
    PassNotFoundError,
    VideoError,
)
from wanhe.imaging.exr import Frame, read_layers, write_layers
from wanhe.imaging.preview import srgb_encode, write_preview_png

__all__ = [
    "AssemblyError",
    "DenoiseError",
    "DenoiseStats",
    "ExrReadError",
    "Frame",
    "ImagingError",
    "OutputError",
    "PassNotFoundError",
    "TilePlacement",
    "VideoError",
    "assemble_frame",
    "assemble_tiles",
    "atomic_write",
    "denoise_frame",
    "merge_frames",
    "merge_sample_chunks",
    "read_layers",
    "srgb_encode",
    "write_layers",
    "write_preview_png",
]
