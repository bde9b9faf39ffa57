"""OpenJD `hostRequirements` on wanhe: amounts become a task's resources, attributes decide
whether the farm's workers may run it (pure, but for reading this worker's attributes).

Amounts: `amount.worker.vcpu` → cores, `amount.worker.memory` (MiB) → memory,
`amount.worker.gpu` → GPUs; `amount.worker.gpu.memory` (MiB) and `amount.worker.disk.scratch`
(GiB) are checked against what the farm has. Attributes: `attr.worker.os.family` (linux,
macos, windows), `attr.worker.cpu.arch` (x86_64, arm64) and any `attr.<name>` a worker is
started with (`wanhe serve --worker-attr name=value`, environment WANHE_WORKER_ATTRS).
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field

from wanhe.model import Resources
from wanhe.openjd.template import HostRequirements

MIB = 1 << 20
# what a step that asks for no memory reserves on its worker's node (and may use: the sandbox
# limits a task to its request): a command line's usual working set, with room
DEFAULT_MEMORY = 1 << 30
ATTRS_ENV = "WANHE_WORKER_ATTRS"


def _os_family() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    return "windows" if sys.platform.startswith("win") else sys.platform


def _arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def parse_attr_args(args: list[str]) -> dict[str, list[str]]:
    """`name=value` pairs (repeatable; `attr.` may be left out) as attribute -> values."""
    out: dict[str, list[str]] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        name = name.strip()
        if not sep or not name or not value.strip():
            raise ValueError(f"--worker-attr {arg!r} is not NAME=VALUE — e.g. "
                             "--worker-attr license=houdini")
        if not name.startswith("attr."):
            name = f"attr.{name}"
        out.setdefault(name, []).extend(v.strip() for v in value.split(",") if v.strip())
    return out


def encode_attrs(attrs: dict[str, list[str]]) -> str:
    return ";".join(f"{k}={','.join(v)}" for k, v in sorted(attrs.items()))


def worker_attributes() -> dict[str, list[str]]:
    """This worker's attributes: detected OS family and CPU architecture, and those it was
    started with."""
    attrs = {"attr.worker.os.family": [_os_family()], "attr.worker.cpu.arch": [_arch()]}
    raw = os.environ.get(ATTRS_ENV, "")
    for part in raw.split(";"):
        if "=" in part:
            name, _, values = part.partition("=")
            attrs.setdefault(name.strip(), []).extend(
                v.strip() for v in values.split(",") if v.strip())
    return attrs


@dataclass(frozen=True, slots=True)
class FarmFacts:
    """What the farm's workers are, as far as host requirements go."""

    attributes: dict[str, list[str]] = field(default_factory=worker_attributes)
    max_cpus: float | None = None  # the largest worker's cores (None: unknown / can grow)
    gpus: float | None = None  # GPUs of the farm
    memory: int | None = None  # bytes of the largest machine
    scratch: int | None = None  # free bytes in the work area
    elastic: bool = False


def resources(host: HostRequirements) -> Resources:
    """A step's task resources from its amounts (the minimum asked for); a step that names no
    `amount.worker.memory` reserves DEFAULT_MEMORY."""
    cpus, memory, gpus = 1.0, DEFAULT_MEMORY, 0.0
    for name, lo, _hi in host.amounts:
        if lo is None:
            continue
        if name == "amount.worker.vcpu":
            cpus = max(1.0, float(lo))
        elif name == "amount.worker.memory":
            memory = int(lo * MIB)
        elif name == "amount.worker.gpu":
            gpus = float(lo)
    return Resources(cpus=cpus, memory=memory, gpus=gpus)


def unmet(host: HostRequirements, farm: FarmFacts) -> str | None:
    """None when the farm's workers can satisfy `host`; else the requirement that none can."""
    for name, any_of, all_of in host.attributes:
        have = set(farm.attributes.get(name, []))
        if any_of and not have & set(any_of):
            return (f"{name} anyOf {list(any_of)}: no worker has it (this farm's workers: "
                    f"{name}={sorted(have) or 'unset'})")
        if all_of and not set(all_of) <= have:
            return (f"{name} allOf {list(all_of)}: no worker has all of them (this farm's "
                    f"workers: {name}={sorted(have) or 'unset'})")
    for name, lo, hi in host.amounts:
        if lo is not None and hi is not None and lo > hi:
            return f"{name}: min {lo:g} is above max {hi:g}"
        if name == "amount.worker.vcpu" and lo and farm.max_cpus is not None \
                and not farm.elastic and lo > farm.max_cpus:
            return f"{name} min {lo:g}: the largest worker has {farm.max_cpus:g} core(s)"
        if name == "amount.worker.memory" and lo and farm.memory is not None \
                and lo * MIB > farm.memory:
            return f"{name} min {lo:g} MiB: the largest machine has {farm.memory // MIB} MiB"
        if name in ("amount.worker.gpu", "amount.worker.gpu.memory") and lo \
                and farm.gpus is not None and not farm.elastic and farm.gpus <= 0:
            return f"{name} min {lo:g}: this farm has no GPU"
        if name == "amount.worker.gpu" and lo and farm.gpus is not None and not farm.elastic \
                and lo > farm.gpus:
            return f"{name} min {lo:g}: this farm has {farm.gpus:g} GPU(s)"
        if name == "amount.worker.disk.scratch" and lo and farm.scratch is not None \
                and lo * 1024 * MIB > farm.scratch:
            return (f"{name} min {lo:g} GiB: the work area has "
                    f"{farm.scratch / (1024 * MIB):.1f} GiB free")
        if not name.startswith("amount.worker.") and lo:
            return f"{name}: no worker offers this amount"
    return None
