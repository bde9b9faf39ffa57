"""Sample count for a quality target: what ``wanhe render --quality TARGET`` runs before a job.

``levels`` parses ``--quality`` targets (a PSNR in dB or a named level); ``probe`` renders one
frame at a few sample counts (with and without OIDN) and picks the smallest that reaches the
target; ``autoquality`` sizes the probe for a job and puts the chosen samples in its spec.
The PSNR / SSIM it measures with are image metrics, in :mod:`wanhe.imaging.similarity`.
Checking finished frames (``--qc``) is elsewhere: the task kinds in
:mod:`wanhe.engine.frame_checks`, the detectors in :mod:`wanhe.imaging.qc`.
"""
