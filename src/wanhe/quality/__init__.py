"""Render quality: image metrics against a reference and the probe that picks a sample count.

``metrics`` holds pure PSNR / SSIM on display-referred images; ``probe`` renders one frame at a
few sample counts (with and without OIDN) and picks the smallest that reaches a target;
``levels`` parses ``--quality`` targets.
"""
