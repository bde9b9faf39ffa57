"""Run one short program of a job in that job's sandbox and wait for it: a voice tool
(espeak-ng, Piper, rubberband, through `python -m wanhe.voice.boxed`), a storyboard's
lip-sync keying (`wanhe.blender.shapekeys`), or the scene inspection at submit (a render's
scene, a storyboard's Blender shots). The same boundary as every task
(`wanhe.sandbox.box`): the project's OS user, a mount namespace showing the job's `input/`
read-only and its `output/`, `work/` read-write (plus `inputs` read-only), a cgroup limiting
its memory and processes and metering its CPU; everything it started is killed when it ends.

    done = run_in_job(["python", "-m", "wanhe.voice.boxed"], job_root, project, project_id,
                      name="voice-w1", stdin=request, timeout_s=300)
    done.returncode, done.stdout, done.cpu_s

    box = inspection_box(staging / "input", scratch, project, project_id)  # at submit
    done = wait_in(box, argv, timeout_s=120, what="the scene check")        # then close it

`sandboxed(job_root)` says whether to: only a farm job's work (`job_root` known) on a farm
whose sandbox is on; a local run runs its tools as before, as its user.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from wanhe.lifecycle import TaskFailed, TaskOutOfMemory
from wanhe.metering import METER, Waited
from wanhe.sandbox import accounts
from wanhe.sandbox.box import Sandbox, job_spec, mode, task_memory

_ENV = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "WANHE_PLUGINS",
        "ESPEAK_DATA_PATH")


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    cpu_s: float | None
    peak_memory: int | None
    wall_s: float


def sandboxed(job_root: str | Path | None, project: str | None) -> bool:
    """Whether a job's program runs in the job's sandbox here (a farm job, the sandbox on)."""
    return (job_root is not None and bool(project) and project != accounts.LOCAL_PROJECT
            and mode().on)


def tool_env() -> dict[str, str]:
    """A sandboxed tool's environment: what it needs to find the farm's software, nothing of
    the service's (database URLs, tokens)."""
    env = {name: os.environ[name] for name in _ENV if os.environ.get(name)}
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    return {**env, "HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONUNBUFFERED": "1"}


def python_argv(module: str) -> list[str]:
    """`python -m module` with the farm's own interpreter (shown in every sandbox)."""
    return [sys.executable, "-m", module]


def run_in_job(argv: list[str], job_root: Path, project: str, project_id: int | None, *,
               name: str, stdin: str = "", timeout_s: float = 600,
               memory_bytes: int | None = None, inputs: tuple[Path, ...] = (),
               what: str = "the tool") -> Finished:
    """Run `argv` in `job_root`'s sandbox and wait (see the module's docstring). Raises
    TaskOutOfMemory when its cgroup's limit killed it (naming the limit), TaskFailed when the
    sandbox cannot be made or it outlives `timeout_s`."""
    from wanhe.sandbox.mounts import MountError

    found = mode()
    account = accounts.session_account(project, project_id)
    limit = task_memory(memory_bytes)
    try:
        accounts.prepare_job(account, job_root, namespaced=found.namespace is not None)
        spec = job_spec(job_root, memory_bytes=limit)
        spec = type(spec)(inputs=(*spec.inputs, *inputs), writable=spec.writable,
                          software=spec.software, hidden=spec.hidden,
                          memory_bytes=spec.memory_bytes, pids_max=spec.pids_max,
                          devices=spec.devices)
        box = Sandbox.open(f"{name}-{os.getpid()}-{time.monotonic_ns()}", spec, account)
    except (OSError, ValueError, MountError) as exc:  # CgroupError, MountError
        raise TaskFailed(f"cannot make the sandbox for {what}: {exc}") from None
    try:
        return wait_in(box, argv, stdin=stdin, timeout_s=timeout_s, cwd=job_root / "work",
                       what=what)
    finally:
        box.close()  # whatever it started and left running goes with it


def wait_in(box: Sandbox, argv: list[str], *, stdin: str = "", timeout_s: float = 600,
            cwd: Path | None = None, what: str = "the tool") -> Finished:
    """Run `argv` in the open sandbox `box` with `tool_env()` and wait: its exit status and
    output, and the CPU and memory its cgroup counted. Raises TaskOutOfMemory when the
    cgroup's limit killed it, TaskFailed when it outlives `timeout_s` (everything it started
    is killed then). The caller closes `box`."""
    box.mark()
    started = time.monotonic()
    proc = Waited(box.command(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True, env=tool_env(),
                  cwd=str(cwd) if cwd is not None else "/", start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        box.kill_all()
        proc.communicate()
        raise TaskFailed(f"{what} ran past its {timeout_s:.0f} s limit and was stopped, "
                         "with everything it started") from None
    finally:
        if proc.rusage is not None:
            ran = proc.rusage.ru_utime + proc.rusage.ru_stime
            if box.cpu_s() is None:  # no cgroup: wait4's figure is the task's own, exactly
                METER.claim_children(ran)
            else:  # the cgroup's figure is the task's: no in-process task shares it
                METER.exclude_children(ran)
    wall = time.monotonic() - started
    if box.out_of_memory():
        peak = box.peak_memory() or 0
        raise TaskOutOfMemory(
            f"{what} used more than its {_gib(box.spec.memory_bytes)} memory limit (peak "
            f"{peak / 2**20:.0f} MiB) and the kernel stopped it in its cgroup — ask for "
            "more memory for the task", cpu_s=box.cpu_s(), peak_rss=peak, wall_s=wall)
    return Finished(proc.returncode, out, err, box.cpu_s(), box.peak_memory(), wall)


def inspection_box(inputs: Path, scratch: Path, project: str, project_id: int | None, *,
                   software: tuple[Path, ...] = ()) -> Sandbox | None:
    """The sandbox a submitted scene is read in, before its job exists: the project's user,
    a mount namespace showing the submission's `inputs` read-only and `scratch` (a folder of
    its own, for the border probe's renders) read-write, a cgroup. None where the sandbox is
    off (a laptop, `WANHE_SANDBOX=off`): the caller reads the scene as before."""
    from wanhe.sandbox.spec import SandboxSpec, farm_hidden, pids_limit

    if not mode().on or not project or project == accounts.LOCAL_PROJECT:
        return None
    account = accounts.session_account(project, project_id)
    accounts.share_inputs(account, inputs)
    scratch.mkdir(parents=True, exist_ok=True)
    if account.isolated:
        os.chown(scratch, account.uid, account.gid)
        os.chmod(scratch, 0o700)
    spec = SandboxSpec(inputs=(inputs,), writable=(scratch,), software=software,
                       hidden=farm_hidden(), memory_bytes=task_memory(None),
                       pids_max=pids_limit())
    return Sandbox.open(f"inspect-{os.getpid()}-{time.monotonic_ns()}", spec, account)


def _gib(limit: int | None) -> str:
    if limit is None:
        return "(unlimited)"
    return f"{limit / 2**30:.1f} GiB" if limit >= 2**30 else f"{limit / 2**20:.0f} MiB"
