"""Pick the smallest sample count that reaches a quality target, from a quick probe render.

The probe renders one representative frame at a reduced resolution: once at a high-sample
reference (another seed, adaptive sampling off), then at rising sample counts (the scene's own
adaptive setting, as the job will render), each denoised with OIDN (albedo + normal) like the
farm does. It stops at the first count whose PSNR against the reference reaches the target.
All renders go through one warm :class:`~wanhe.blender.runner.BlenderProcess`.

The reference is itself noisy (measured: the interior scene's 1024-sample frame is only
≈ 38 dB from a noise-free one), and with independent seeds its error adds to every measured
MSE. Path-tracing noise falls as 1/samples, so a raw frame at N samples measures
``MSE = c/N + c/R`` against an R-sample reference: the reference's own share ``c/R`` is
``MSE_raw(N) · N / (N + R)``. The probe subtracts that share (at most 6 dB of correction) and
decides on the estimated PSNR against a noise-free frame; both figures are reported.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanhe.imaging.denoise import denoise_frame
from wanhe.imaging.exr import FloatImage, read_layers
from wanhe.imaging.similarity import Score, score

__all__ = [
    "DEFAULT_LADDER",
    "Measured",
    "ProbeError",
    "ProbePoint",
    "ProbeResult",
    "measure",
    "noise_free_psnr",
    "probe_samples",
]

DEFAULT_LADDER: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256)
REFERENCE_SEED_OFFSET = 7919  # the reference must not share the probed renders' samples


class ProbeError(RuntimeError):
    """A probe render failed; the message says which and why."""


@dataclass(frozen=True)
class Measured:
    """One render of the probe frame: the raw and (optionally) the denoised picture."""

    samples: int
    raw: FloatImage
    denoised: FloatImage | None
    render_s: float
    denoise_s: float
    render_cpu_s: float = 0.0  # Blender's CPU seconds (all threads): the farm's cost
    denoise_cpu_s: float = 0.0  # this process's CPU seconds for denoise_frame (OIDN + I/O)


def measure(
    blender: Any,
    *,
    scene: str,
    frame: int,
    samples: int,
    work: Path,
    seed: int,
    denoise: bool,
    resolution_percentage: int | None = None,
    resolution: tuple[int, int] | None = None,
    camera: str | None = None,
    threads: int | None = None,
    adaptive: bool | None = None,
) -> Measured:
    """Render ``frame`` once at ``samples`` (and denoise it with OIDN when ``denoise``)."""
    from wanhe.blender.protocol import RenderRequest

    raw_path = work / f"probe_s{samples}_seed{seed}.exr"
    request = RenderRequest(
        scene=scene, frame=frame, output=str(raw_path), samples=samples, seed=seed,
        resolution_percentage=resolution_percentage, resolution=resolution, camera=camera,
        threads=threads, denoise_passes=denoise, adaptive_sampling=adaptive,
    )
    reply = blender.render(request)
    if not reply.ok or not raw_path.exists():
        raise ProbeError(f"probe render of frame {frame} at {samples} samples failed: "
                         f"{reply.error or 'no output written'}")
    raw = read_layers(raw_path).rgb("Combined")
    denoised: FloatImage | None = None
    denoise_s = denoise_cpu_s = 0.0
    if denoise:
        out = work / f"probe_s{samples}_seed{seed}_dn.exr"
        cpu0 = time.process_time()
        stats = denoise_frame(raw_path, out)
        denoise_cpu_s = time.process_time() - cpu0
        denoise_s = stats.seconds
        denoised = read_layers(out).rgb("Combined")
    return Measured(samples, raw, denoised, reply.wall_s, denoise_s, reply.cpu_s, denoise_cpu_s)


@dataclass(frozen=True)
class ProbePoint:
    samples: int
    raw: Score
    denoised: Score | None
    render_s: float
    denoise_s: float
    estimated_db: float | None = None  # PSNR of `best` against a noise-free frame (estimate)

    @property
    def best(self) -> Score:
        return self.denoised if self.denoised is not None else self.raw

    @property
    def best_db(self) -> float:
        """What the probe decides on: the estimate when there is one, else the measurement."""
        return self.estimated_db if self.estimated_db is not None else self.best.psnr_db

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "raw": self.raw.to_dict(),
            "denoised": self.denoised.to_dict() if self.denoised else None,
            "render_s": self.render_s,
            "denoise_s": self.denoise_s,
            "estimated_db": self.estimated_db,
        }


@dataclass(frozen=True)
class ProbeResult:
    target_db: float
    target_label: str
    frame: int
    resolution_percentage: int
    size: tuple[int, int]
    reference_samples: int
    denoise: bool
    scene_samples: int | None
    chosen_samples: int
    reached: bool
    points: tuple[ProbePoint, ...] = field(default_factory=tuple)
    wall_s: float = 0.0

    @property
    def chosen(self) -> ProbePoint:
        return next(p for p in self.points if p.samples == self.chosen_samples)

    def explain(self) -> str:
        """One sentence for the user: what was picked and why."""
        point = self.chosen
        how = " + OIDN" if self.denoise else " (no denoise)"
        where = (f"on a probe of frame {self.frame} at {self.resolution_percentage}% "
                 f"({self.size[0]}x{self.size[1]}) against {self.reference_samples} samples")
        cost = ""
        if self.scene_samples:
            share = 100.0 * self.chosen_samples / self.scene_samples
            cost = f" — render time ≈ {share:.0f}% of the scene's {self.scene_samples} samples"
        if self.reached:
            return (f"--quality {self.target_label}: {self.chosen_samples} samples{how} reach "
                    f"{point.best_db:.1f} dB{self._measured(point)} (SSIM "
                    f"{point.best.ssim:.3f}) {where}{cost}")
        return (f"--quality {self.target_label}: NOT REACHED — the most probed, "
                f"{self.chosen_samples} samples{how}, reach only {point.best_db:.1f} dB"
                f"{self._measured(point)} "
                f"{where}; rendering at {self.chosen_samples} samples and flagging the frames")

    def _measured(self, point: ProbePoint) -> str:
        if point.estimated_db is None:
            return ""
        return f" (est.; {point.best.psnr_db:.1f} measured against the reference)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_db": self.target_db,
            "target": self.target_label,
            "frame": self.frame,
            "resolution_percentage": self.resolution_percentage,
            "size": list(self.size),
            "reference_samples": self.reference_samples,
            "denoise": self.denoise,
            "scene_samples": self.scene_samples,
            "chosen_samples": self.chosen_samples,
            "reached": self.reached,
            "points": [p.to_dict() for p in self.points],
            "wall_s": self.wall_s,
            "explanation": self.explain(),
        }


MAX_CORRECTION_DB = 6.0


def noise_free_psnr(measured_db: float, raw_db: float, samples: int, reference: int) -> float:
    """Estimated PSNR against a noise-free frame of a frame that measured ``measured_db``
    against a ``reference``-sample render, given the raw ``samples``-sample frame's
    ``raw_db`` (see the module docstring); at most :data:`MAX_CORRECTION_DB` above."""
    mse = 10.0 ** (-measured_db / 10.0)
    reference_mse = 10.0 ** (-raw_db / 10.0) * samples / (samples + reference)
    floor = mse * 10.0 ** (-MAX_CORRECTION_DB / 10.0)
    return -10.0 * math.log10(max(mse - reference_mse, floor))


def probe_samples(
    blender: Any,
    *,
    scene: str,
    frame: int,
    target_db: float,
    target_label: str | None = None,
    resolution_percentage: int,
    camera: str | None = None,
    ladder: Sequence[int] = DEFAULT_LADDER,
    reference_samples: int = 1024,
    denoise: bool = True,
    threads: int | None = None,
    seed: int = 0,
    scene_samples: int | None = None,
    on_point: Callable[[ProbePoint], None] | None = None,
) -> ProbeResult:
    """Render the probe and pick the smallest sample count of ``ladder`` that reaches
    ``target_db`` (denoised PSNR when ``denoise``, else raw); the largest if none does."""
    counts = sorted(set(ladder))
    if not counts or counts[0] < 1:
        raise ValueError(f"the probe needs positive sample counts, got {list(ladder)}")
    if reference_samples <= counts[-1]:
        raise ValueError(f"the reference ({reference_samples} samples) must have more samples "
                         f"than the largest probed count ({counts[-1]})")
    started = time.monotonic()
    common: dict[str, Any] = {
        "scene": scene, "frame": frame, "resolution_percentage": resolution_percentage,
        "camera": camera, "threads": threads,
    }
    points: list[ProbePoint] = []
    with tempfile.TemporaryDirectory(prefix="wanhe-probe-") as tmp:
        work = Path(tmp)
        ref = measure(blender, samples=reference_samples, work=work,
                      seed=seed + REFERENCE_SEED_OFFSET, denoise=False, adaptive=False, **common)
        chosen: int | None = None
        for count in counts:
            m = measure(blender, samples=count, work=work, seed=seed, denoise=denoise, **common)
            raw = score(m.raw, ref.raw)
            denoised = score(m.denoised, ref.raw) if m.denoised is not None else None
            best = denoised if denoised is not None else raw
            estimate = noise_free_psnr(best.psnr_db, raw.psnr_db, count, reference_samples)
            point = ProbePoint(count, raw, denoised, m.render_s, m.denoise_s, estimate)
            points.append(point)
            if on_point is not None:
                on_point(point)
            if point.best_db >= target_db:
                chosen = count
                break
        height, width = ref.raw.shape[:2]
    return ProbeResult(
        target_db=target_db,
        target_label=target_label or f"{target_db:g} dB",
        frame=frame,
        resolution_percentage=resolution_percentage,
        size=(width, height),
        reference_samples=reference_samples,
        denoise=denoise,
        scene_samples=scene_samples,
        chosen_samples=chosen if chosen is not None else counts[-1],
        reached=chosen is not None,
        points=tuple(points),
        wall_s=time.monotonic() - started,
    )
