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
from wanhe.imaging.qc import FrameStats, QCIssue, QCResult, QCThresholds, check_frame, frame_stats
from wanhe.imaging.video import write_contact_sheet, write_preview_video

__all__ = [
    "AssemblyError",
    "DenoiseError",
    "DenoiseStats",
    "ExrReadError",
    "Frame",
    "FrameStats",
    "ImagingError",
    "OutputError",
    "PassNotFoundError",
    "QCIssue",
    "QCResult",
    "QCThresholds",
    "TilePlacement",
    "VideoError",
    "assemble_frame",
    "assemble_tiles",
    "atomic_write",
    "check_frame",
    "denoise_frame",
    "frame_stats",
    "merge_frames",
    "merge_sample_chunks",
    "read_layers",
    "srgb_encode",
    "write_contact_sheet",
    "write_layers",
    "write_preview_png",
    "write_preview_video",
]
