"""Pure image work on rendered frames: EXR I/O, tile assembly, sample-chunk merge, OIDN
denoise, previews, automatic quality checks and preview videos. No Blender needed.

Import from the modules (``wanhe.imaging.exr``, ``.assemble``, ``.denoise``, ``.preview``,
``.qc``, ``.video``, ``.atomic``, ``.errors``). Nothing is re-exported here on purpose: the
package is imported by the CLI on its way to starting a render, and pulling in SciPy, PyAV and
OIDN for every module cost ≈ 0.4 s of that start.
"""
