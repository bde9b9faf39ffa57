"""Denoise economics: how many samples does OIDN save at equal quality?

For each scene (built with examples/make_scenes.py) this renders frame 1 at a high-sample
reference and at a ladder of sample counts, each raw and denoised with OIDN (albedo + normal
passes, the farm's own ``denoise_frame``), and scores PSNR / SSIM against the reference
(display-referred sRGB, see ``wanhe.imaging.similarity``). It then finds the smallest sample count
whose denoised frame is at least as good (PSNR and SSIM) as the raw frame at the scene's own
sample count, and reports the render time saved (render + OIDN time vs. the raw render).

Every render runs in one warm Blender process (scene sync paid once), adaptive sampling off so
a sample count means what it says, and the reference uses another seed than the ladder (a
shared seed would share the first samples and flatter the raw frames).

    .venv/bin/python bench/denoise.py                       # 320x180, 1024-sample reference
    .venv/bin/python bench/denoise.py --resolution 160x90 --reference 256 --no-append  # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from wanhe.blender.runner import BlenderProcess  # noqa: E402
from wanhe.imaging.similarity import Score, score  # noqa: E402
from wanhe.samplecount.probe import REFERENCE_SEED_OFFSET, measure  # noqa: E402

DEFAULT_LADDER = (4, 8, 16, 24, 32, 48, 64, 128, 256)


@dataclass(frozen=True)
class Row:
    samples: int
    raw: Score
    denoised: Score
    render_s: float
    denoise_s: float
    render_cpu_s: float
    denoise_cpu_s: float

    @property
    def cost_cpu_s(self) -> float:
        """CPU seconds of the denoised frame: render + denoise (what the farm meters)."""
        return self.render_cpu_s + self.denoise_cpu_s


@dataclass(frozen=True)
class SceneResult:
    kind: str
    scene_samples: int
    reference_samples: int
    reference_s: float
    rows: list[Row]

    def full(self) -> Row:
        return next(r for r in self.rows if r.samples == self.scene_samples)

    def match(self) -> Row | None:
        """Smallest sample count whose denoised frame is as good as the raw full-sample one."""
        full = self.full()
        for row in self.rows:
            if row.denoised.psnr_db >= full.raw.psnr_db and row.denoised.ssim >= full.raw.ssim:
                return row
        return None

    def saved(self) -> float | None:
        """CPU time saved: denoised match (render + OIDN) vs. the raw full-sample render."""
        row = self.match()
        if row is None:
            return None
        return 1.0 - row.cost_cpu_s / self.full().render_cpu_s

    def saved_wall(self) -> float | None:
        row = self.match()
        if row is None:
            return None
        return 1.0 - (row.render_s + row.denoise_s) / self.full().render_s


def build(kind: str, out: Path, resolution: str) -> Path:
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_scenes.py"), kind, str(out),
         "--resolution", resolution],
        check=True, capture_output=True, timeout=300,
    )
    return out


def run_scene(
    blender: BlenderProcess, kind: str, work: Path, resolution: str, reference: int,
    ladder: list[int], threads: int,
) -> SceneResult:
    scene = build(kind, work / f"{kind}.blend", resolution)
    info = blender.warm(scene)  # load once; later renders reuse the synced scene
    scene_samples = int(info.samples or 64)
    counts = sorted(set(ladder) | {scene_samples})
    common = {"scene": str(scene), "frame": 1, "threads": threads, "adaptive": False}
    print(f"[{kind}] reference {reference} samples ...", file=sys.stderr, flush=True)
    ref = measure(blender, samples=reference, work=work, seed=REFERENCE_SEED_OFFSET,
                  denoise=False, **common)  # type: ignore[arg-type]
    rows: list[Row] = []
    for count in counts:
        m = measure(blender, samples=count, work=work, seed=0, denoise=True,
                    **common)  # type: ignore[arg-type]
        assert m.denoised is not None
        row = Row(count, score(m.raw, ref.raw), score(m.denoised, ref.raw), m.render_s,
                  m.denoise_s, m.render_cpu_s, m.denoise_cpu_s)
        rows.append(row)
        print(f"[{kind}] {count:4d} samples: raw {row.raw.psnr_db:.2f} dB, OIDN "
              f"{row.denoised.psnr_db:.2f} dB, {row.render_s:.2f} s, {row.render_cpu_s:.2f} cpu-s",
              file=sys.stderr, flush=True)
    return SceneResult(kind, scene_samples, reference, ref.render_s, rows)


def table(result: SceneResult) -> str:
    lines = [
        f"**{result.kind}** (scene samples {result.scene_samples}; reference "
        f"{result.reference_samples} samples, {result.reference_s:.1f} s)",
        "",
        "| samples | render wall s | render CPU s | raw PSNR dB | raw SSIM | OIDN PSNR dB "
        "| OIDN SSIM | OIDN CPU s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result.rows:
        mark = " (scene)" if r.samples == result.scene_samples else ""
        lines.append(
            f"| {r.samples}{mark} | {r.render_s:.2f} | {r.render_cpu_s:.2f} | "
            f"{r.raw.psnr_db:.2f} | {r.raw.ssim:.4f} | {r.denoised.psnr_db:.2f} | "
            f"{r.denoised.ssim:.4f} | {r.denoise_cpu_s:.3f} |"
        )
    full, match, saved, wall = result.full(), result.match(), result.saved(), result.saved_wall()
    n, r = result.scene_samples, result.reference_samples
    ref_db = full.raw.psnr_db - 10 * math.log10(n / (n + r))
    lines.append("")
    lines.append(
        f"The {r}-sample reference is itself ≈ {ref_db:.1f} dB from a noise-free frame "
        f"(estimated from the raw {n}-sample row, noise ∝ 1/samples): its error adds equally "
        "to every row's MSE, so it caps the measured PSNRs but not which row matches."
    )
    lines.append("")
    if match is None or saved is None:
        lines.append(f"No probed count + OIDN matches raw {result.scene_samples} samples "
                     f"({full.raw.psnr_db:.2f} dB).")
    else:
        lines.append(
            f"Raw {result.scene_samples} samples: {full.raw.psnr_db:.2f} dB / SSIM "
            f"{full.raw.ssim:.4f}, {full.render_cpu_s:.1f} CPU s. Smallest match: "
            f"**{match.samples} samples + OIDN**, {match.denoised.psnr_db:.2f} dB / SSIM "
            f"{match.denoised.ssim:.4f}, {match.cost_cpu_s:.1f} CPU s (render + OIDN): "
            f"**{saved:.0%} less render time** (CPU seconds; {wall:.0%} by wall clock) at "
            "equal quality."
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default="demo,interior")
    parser.add_argument("--resolution", default="320x180")
    parser.add_argument("--reference", type=int, default=1024, help="reference samples")
    parser.add_argument("--samples", default=",".join(map(str, DEFAULT_LADDER)))
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--no-append", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    ladder = [int(s) for s in args.samples.split(",")]
    command = "python bench/denoise.py " + shlex.join(sys.argv[1:])
    started = time.monotonic()
    results: list[SceneResult] = []
    with tempfile.TemporaryDirectory(prefix="wanhe-bench-denoise-") as tmp, \
            BlenderProcess() as blender:
        for kind in args.scenes.split(","):
            results.append(run_scene(blender, kind, Path(tmp), args.resolution, args.reference,
                                     ladder, args.threads))
    elapsed = time.monotonic() - started
    body = "\n\n".join(table(r) for r in results)
    section = (
        f"## Denoise economics (bench/denoise.py)\n\n"
        f"{dt.date.today().isoformat()} on {machine()}. Frame 1 at {args.resolution}, "
        f"{args.threads} Cycles threads, adaptive sampling off, one warm Blender process; "
        f"PSNR/SSIM on sRGB-encoded 0..1 RGB (scikit-image) against a {args.reference}-sample "
        f"render with another seed. OIDN: `denoise_frame` (RT filter, high quality, albedo + "
        f"normal). Time saved is counted in CPU seconds (Blender's rusage + this process's "
        f"for OIDN), which other load on the machine barely moves; wall clock is shown too. "
        f"Whole run {elapsed / 60:.1f} min; load average at the end "
        f"{os.getloadavg()[0]:.1f}.\n\n"
        f"```\n{command}\n```\n\n{body}\n"
    )
    print(section)
    if not args.no_append:
        with args.results.open("a", encoding="utf-8") as f:
            f.write(("\n" if args.results.stat().st_size else "") + section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
