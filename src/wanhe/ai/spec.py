"""A generation spec: shots of seeded candidates (pydantic; a YAML or JSON file, CLI flags or
a REST body). Pure: no torch, no files read here except `load_spec`.

Every candidate's seed comes from the job seed (or the shot's own seed) and its index:
`shot_base + index`, with `shot_base = shot.seed`, or `job seed + 1000 × shot index`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_CANDIDATES = 1000  # per shot: seeds of one shot never reach the next shot's
MAX_SEED = 2**63 - 1  # what the database's integers and torch's generators take
MAX_FIRST_INDEX = 10**9  # candidate numbers name files (c000…) and rows
MAX_CANDIDATES_PER_JOB = 20_000
MAX_SIDE = 8192
SEED_STRIDE = 1000


def parse_size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1024x576")
    width, height = int(match.group(1)), int(match.group(2))
    for side, value in (("width", width), ("height", height)):
        if not 8 <= value <= MAX_SIDE:
            raise ValueError(f"{side} {value} must be between 8 and {MAX_SIDE}")
        if value % 8:
            raise ValueError(
                f"{side} {value} is not a multiple of 8 (the model's latents are 1/8 of the "
                f"image) — use {value - value % 8 or 8} or {value + 8 - value % 8}"
            )
    return width, height


class Shot(BaseModel):
    """One shot: a prompt (and settings) of which `candidates` seeded takes are made."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = Field(min_length=1, max_length=100)
    prompt: str = Field(default="", max_length=4000)
    negative: str = Field(default="", max_length=4000)
    size: str = "512x512"
    candidates: int = Field(default=4, ge=1, le=MAX_CANDIDATES)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    seeds: list[int] | None = Field(default=None, description="explicit seeds, one per take")
    first_index: int = Field(default=0, ge=0, le=MAX_FIRST_INDEX,
                             description="index of the first take (more)")
    image: str | None = Field(default=None, description="init / reference image (a path)")
    strength: float = Field(default=0.75, gt=0, le=1)
    steps: int = Field(default=30, ge=1, le=1000)
    guidance: float = Field(default=6.0, ge=0, le=50)
    frames: int = Field(default=25, ge=1, le=1000, description="video frames")
    fps: int = Field(default=8, ge=1, le=120)

    @field_validator("candidates", mode="before")
    @classmethod
    def _candidates(cls, value: Any) -> Any:
        if isinstance(value, int) and not 1 <= value <= MAX_CANDIDATES:
            raise ValueError(f"candidates {value} must be between 1 and {MAX_CANDIDATES} per "
                             "shot — split a bigger search into more shots or jobs")
        return value

    @field_validator("size")
    @classmethod
    def _size(cls, value: str) -> str:
        width, height = parse_size(value)
        return f"{width}x{height}"

    @model_validator(mode="after")
    def _seeds(self) -> Shot:
        if self.seeds is not None and len(self.seeds) != self.candidates:
            raise ValueError(f"seeds lists {len(self.seeds)} seed(s) for {self.candidates} "
                             "candidate(s) — give one seed per candidate, or leave seeds out")
        for seed in self.seeds or []:
            if not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seed {seed} is out of range — seeds are 0 to {MAX_SEED}")
        return self

    @property
    def width(self) -> int:
        return parse_size(self.size)[0]

    @property
    def height(self) -> int:
        return parse_size(self.size)[1]

    def seed_of(self, job_seed: int, shot_index: int, candidate: int) -> int:
        """The seed of take `candidate` (0-based within this spec's list of takes)."""
        if self.seeds is not None:
            return self.seeds[candidate]
        base = self.seed if self.seed is not None else job_seed + SEED_STRIDE * shot_index
        return base + self.first_index + candidate


class GenSpec(BaseModel):
    """What a generation job makes: its shots, and how the work is cut."""

    model_config = ConfigDict(extra="forbid")

    shots: list[Shot] = Field(description="at least one shot")
    seed: int = Field(default=0, ge=0, le=2**62)
    batch: int = Field(default=1, ge=1, le=64,
                       description="candidates per task (1: bit-identical regeneration)")
    device: Literal["auto", "gpu", "cpu"] = "auto"
    threads: int = Field(default=0, ge=0, le=1024, description="CPU threads a CPU task uses")
    score: bool = True
    clip_model: str | None = Field(default=None, max_length=100, description="a registered "
                                   "CLIP-type model: scores prompt adherence")
    max_attempts: int = Field(default=2, ge=1, le=10)

    @field_validator("shots")
    @classmethod
    def _some_shots(cls, shots: list[Shot]) -> list[Shot]:
        if not shots:
            raise ValueError("the spec has no shots (0 prompts) — give at least one shot with "
                             "a model and a prompt")
        total = sum(s.candidates for s in shots)
        if total > MAX_CANDIDATES_PER_JOB:
            raise ValueError(f"{total:,} candidates in one job is more than "
                             f"{MAX_CANDIDATES_PER_JOB:,} — split the spec into several jobs")
        names = [s.name for s in shots if s.name]
        if len(names) != len(set(names)):
            raise ValueError("two shots have the same name — shot names must be unique")
        return shots

    @model_validator(mode="after")
    def _seeds_in_range(self) -> GenSpec:
        """Every take's seed (its own, or counted from the job's and the shot's) fits."""
        for si, shot in enumerate(self.shots):
            last = shot.seed_of(self.seed, si, shot.candidates - 1)
            if last > MAX_SEED:
                raise ValueError(f"shot {self.shot_name(si)!r}: its last take's seed would be "
                                 f"{last}, over {MAX_SEED} — use a smaller seed or first_index")
        return self

    def shot_name(self, index: int) -> str:
        return self.shots[index].name or f"shot{index:03d}"


def load_spec(path: Path) -> dict[str, Any]:
    """A spec file's content (YAML or JSON) as a dict; a bad file raises ValueError."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the spec {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ValueError(f"{path} is not valid {path.suffix.lstrip('.').upper() or 'YAML'}: "
                         f"{str(exc).splitlines()[0]}") from None
    if isinstance(data, list):
        data = {"shots": data}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping with 'shots' (or a list of shots)")
    return data


def one_shot_spec(model: str, prompt: str, *, candidates: int = 4, seed: int = 0,
                  size: str = "512x512", steps: int = 30, guidance: float = 6.0,
                  negative: str = "", name: str | None = None, image: str | None = None,
                  frames: int = 25, fps: int = 8) -> GenSpec:
    """A one-shot generation spec (for other job types that queue an AI-prompt shot)."""
    return GenSpec(seed=seed, shots=[Shot(
        name=name, model=model, prompt=prompt, negative=negative, size=size,
        candidates=candidates, steps=steps, guidance=guidance, image=image, frames=frames,
        fps=fps,
    )])
