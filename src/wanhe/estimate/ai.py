"""What AI work costs, from small probes: a diffusion model's candidates and a voice's lines.

A generation candidate is one pipeline call. Its cost on one device splits into what a
worker pays once per model (loading it, and the first call's warm-up of kernels and
allocator) and what every candidate pays::

    candidate(steps) = fixed + per_step · steps

``fixed`` (prompt encoding, the VAE decode, writing the output) and ``per_step`` (one
denoiser step at the shot's size, frames and guidance) are measured warm, from two calls of
different step counts; ``cold`` = the load plus the first call's extra over a warm one. A job
pays ``cold`` once per worker that loads the model (one here) and ``candidate(steps)`` per
candidate. Seconds are CPU seconds of the process on a CPU run (what a task bills on cores
of its own, as for scenes: :mod:`wanhe.estimate.costmodel`) and wall seconds of the GPU on
a GPU run (what the farm meters as GPU-seconds).

A voice's line costs ``fixed + per_char · characters`` compute seconds (synthesis, pitch
shift and trimming, as a voice task runs them) and lasts ``audio_per_char · characters``
seconds, fitted from the voice's shortest and longest line (one line: through the origin).

History: where the farm metered candidates of the same model on the same device at the same
size before, their cost per candidate-step (loads included, as billed) replaces the probe's.

Pure: no I/O. The probes are made in :mod:`wanhe.runs.estimate_ai`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GenHistory", "GenProbe", "LineRate", "ShotCost", "fit_line_rate", "fit_steps",
           "shot_cost"]


@dataclass(frozen=True)
class GenProbe:
    """One model's probe at one shot shape (size, frames, guidance, device)."""

    device: str  # "cpu" or "gpu"
    threads: int
    load_s: float  # loading the pipeline onto the device
    first_s: float  # the first call (1 step): warm-up included
    fixed_s: float  # a warm call's cost beside its steps
    per_step_s: float
    probe_s: float  # what the probe cost in all (load and calls)
    steps_probed: tuple[int, ...]

    @property
    def cold_s(self) -> float:
        """What a worker pays once for the model: the load and the first call's warm-up."""
        return self.load_s + max(self.first_s - (self.fixed_s + self.per_step_s), 0.0)

    def candidate_s(self, steps: int) -> float:
        return self.fixed_s + self.per_step_s * steps


def fit_steps(timings: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, per_step) from warm calls (steps, seconds): a line through the fewest and the
    most steps; one step count alone is all per-step (fixed 0). Never negative."""
    ordered = sorted(timings)
    (s0, t0), (s1, t1) = ordered[0], ordered[-1]
    if s1 == s0:
        per_step = sum(t for _, t in ordered) / len(ordered) / s0
        return 0.0, per_step
    per_step = max((t1 - t0) / (s1 - s0), 0.0)
    fixed = max(t0 - per_step * s0, 0.0)
    return fixed, per_step


@dataclass(frozen=True)
class GenHistory:
    """What the farm metered before for one model at one shape: runs (jobs), candidates and
    their seconds (CPU seconds or GPU-seconds, by device), candidate-steps."""

    runs: int
    candidates: int
    candidate_steps: int
    seconds: float

    @property
    def per_step_s(self) -> float:
        return self.seconds / self.candidate_steps if self.candidate_steps else 0.0


@dataclass(frozen=True)
class ShotCost:
    """One shot's estimate: its candidates' seconds, how it was made, and its parts."""

    candidates: int
    steps: int
    cold_s: float
    per_candidate_s: float
    seconds: float
    source: str  # "probe" or "history"
    history_runs: int = 0


def shot_cost(candidates: int, steps: int, *, probe: GenProbe | None = None,
              history: GenHistory | None = None, cold: bool = True) -> ShotCost:
    """A shot of `candidates` takes of `steps` steps: from history where there is some (its
    cost per candidate-step already holds the loads), else the probe; `cold`: the shot's
    model is loaded for it (False: an earlier shot of the job loaded it)."""
    if history is not None and history.candidate_steps > 0:
        each = history.per_step_s * steps
        return ShotCost(candidates, steps, 0.0, each, each * candidates, "history",
                        history.runs)
    if probe is None:
        raise ValueError("a shot's estimate needs its probe or its model's history")
    load = probe.cold_s if cold else 0.0
    each = probe.candidate_s(steps)
    return ShotCost(candidates, steps, load, each, load + each * candidates, "probe")


@dataclass(frozen=True)
class LineRate:
    """A voice's cost and length per line: compute and audio seconds per character."""

    fixed_s: float
    per_char_s: float
    audio_per_char_s: float
    compute_per_audio_s: float  # seconds of compute per second of speech, as probed
    lines_probed: int

    def compute_s(self, chars: int) -> float:
        return self.fixed_s + self.per_char_s * chars

    def audio_s(self, chars: int) -> float:
        return self.audio_per_char_s * chars


def fit_line_rate(probes: list[tuple[int, float, float]]) -> LineRate:
    """From probe lines (characters, compute seconds, audio seconds)."""
    ordered = sorted(probes)
    (c0, t0, _a0), (c1, t1, _a1) = ordered[0], ordered[-1]
    chars = sum(c for c, _, _ in ordered)
    audio = sum(a for _, _, a in ordered)
    compute = sum(t for _, t, _ in ordered)
    if c1 == c0:
        fixed, per_char = 0.0, compute / max(chars, 1)
    else:
        per_char = max((t1 - t0) / (c1 - c0), 0.0)
        fixed = max(t0 - per_char * c0, 0.0)
    return LineRate(fixed, per_char, audio / max(chars, 1),
                    compute / audio if audio > 0 else 0.0, len(ordered))
