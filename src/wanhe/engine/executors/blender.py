"""The Blender executor: renders tiles, sample chunks and frames in one warm Blender process
with the scene kept loaded, and runs the QC task (whose re-render needs that Blender).

The QC task reserves a render slot's cores (the job type asks for them), so a re-render is
reserved and billed as what it uses. Every output is written under a temporary name and
renamed into place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, measured
from wanhe.engine.executors.registry import register_executor
from wanhe.engine.frame_checks import run_qc
from wanhe.engine.frame_steps import attempt_error, render_device, run_render
from wanhe.lifecycle import (
    AttemptError,
    TaskCancelled,
    TaskFailed,
    TaskOutOfMemory,
)
from wanhe.model import TaskKind

if TYPE_CHECKING:
    from wanhe.sandbox.box import Sandbox


def job_root_of(path: str | Path) -> Path | None:
    """The job folder (`<work>/jobs/<id>`) a path of a farm task lies in; None for a local
    render's own paths."""
    for folder in Path(path).absolute().parents:
        if folder.parent.name == "jobs" and (folder / "input").is_dir():
            return folder
    return None


@register_executor
class BlenderExecutor(Executor):
    """Renders in one warm Blender process per worker. On a sandboxing farm the process runs
    in a sandbox of its job (`wanhe.sandbox`): as the project's user, seeing that job's
    folders only, in a cgroup limited to each task's memory in turn. So a process stays warm
    for the tasks of one job (the scene loaded once, as before), and a task of another job
    starts a fresh one in that job's sandbox."""

    kinds = frozenset({TaskKind.RENDER.value, TaskKind.QC.value})

    _blender: Any = None
    _closed = False
    _box: Sandbox | None = None
    _box_key: tuple[str, str] | None = None

    def process(self, project: str | None = None, near: str | None = None,
                project_id: int | None = None) -> Any:
        """This worker's Blender, started on first use (also used to inspect a scene before
        the first task: the scene it loads stays loaded for the renders), in the sandbox of
        the job that `near` (a path of the task) lies in."""
        if self._closed:
            raise TaskCancelled(f"worker {self.worker.name} was shut down")
        from wanhe.sandbox import accounts
        from wanhe.sandbox.box import mode

        project = project or accounts.LOCAL_PROJECT
        root = job_root_of(near) if near else None
        key = (project, str(root or ""))
        if self._blender is not None and self._box_key not in (None, key) and mode().on:
            self._drop()  # another job's task: its own sandbox, a fresh process
        if self._blender is None:
            from wanhe.blender.runner import BlenderProcess

            box = self._sandbox(project, root, project_id)
            env = None
            if box is not None and box.isolated:  # the service's HOME is not the task's
                env = {**os.environ, "HOME": "/tmp", "TMPDIR": "/tmp"}
            self._blender = BlenderProcess(
                self.worker.blender, env=env,
                wrap=None if box is None or not box.mode.on else box.command)
            self._box, self._box_key = box, key
        return self._blender

    def _sandbox(self, project: str, root: Path | None,
                 project_id: int | None = None) -> Sandbox | None:
        from wanhe.sandbox import accounts
        from wanhe.sandbox.box import Sandbox, job_spec, mode
        from wanhe.sandbox.spec import SandboxSpec

        if not mode().on:
            return None
        confine = root is not None and project != accounts.LOCAL_PROJECT
        account = accounts.session_account(project if confine else accounts.LOCAL_PROJECT,
                                           project_id if confine else None)
        software = (Path(self.worker.blender).resolve().parent,) if self.worker.blender else ()
        try:
            if confine:
                assert root is not None
                accounts.prepare_job(account, root, namespaced=mode().namespace is not None)
                spec = job_spec(root, memory_bytes=None, software=software,
                                gpu=bool(self.worker.gpu_ids))
            else:
                spec = SandboxSpec(software=software)
            return Sandbox.open(f"blender-{self.worker.name}", spec, account, confine=confine)
        except (OSError, ValueError) as exc:  # CgroupError, MountError
            raise TaskFailed(f"cannot make the sandbox for Blender on worker "
                             f"{self.worker.name}: {exc}") from None

    def _drop(self) -> None:
        if self._blender is not None:
            self._blender.close()
            self._blender = None
        if self._box is not None:
            self._box.close()
        self._box, self._box_key = None, None

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        scene = payload.get("scene") or (payload.get("rerender") or {}).get("scene")
        return str(scene) if scene else None

    def warm(self, key: str) -> None:
        from wanhe.sandbox.box import mode

        if mode().on and job_root_of(key) is not None:
            return  # whose job it is is known at its first task: the sandbox is made then
        self.process().warm(key)  # opens the scene and keeps it loaded

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        near = payload.get("output") if kind == TaskKind.RENDER.value else \
            (payload.get("rerender") or {}).get("work_dir") or payload.get("input")
        blender = self.process(ctx.project, near, ctx.project_id)
        box = self._box
        if box is None or box.group is None:
            return self._run(kind, payload, ctx, blender)
        from wanhe.sandbox.box import task_memory

        box.set_memory(task_memory(ctx.memory_bytes or None))
        box.mark()
        if box.isolated and near:  # the task's folder: made by the worker, written by Blender
            self._own(Path(near).parent if kind == TaskKind.RENDER.value else Path(near))
        try:
            result = self._run(kind, payload, ctx, blender)
        except AttemptError as exc:
            if box.out_of_memory():
                peak = box.peak_memory() or 0
                raise TaskOutOfMemory(
                    f"Blender ran out of memory ({box.limit_text()}, peak "
                    f"{peak / 2**20:.0f} MiB) and the kernel killed it in its cgroup — give "
                    "the task more memory or render smaller tiles",
                    cpu_s=box.cpu_s(), peak_rss=peak, wall_s=exc.wall_s) from None
            raise
        # A render's use is its cgroup's (every process, the start of a fresh Blender
        # included); a QC task's is its own process's plus the re-render it reports.
        used, held = box.cpu_s(), box.peak_memory()
        if kind == TaskKind.RENDER.value:
            result.cpu_s = result.cpu_s if used is None else used
            result.peak_rss = held or result.peak_rss
        return result

    def _own(self, folder: Path) -> None:
        """Hand a folder the worker made for a task to the sandbox's user."""
        box = self._box
        if box is None or not box.account.isolated:
            return
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, box.account.uid, box.account.gid)

    def _run(self, kind: str, payload: dict[str, Any], ctx: TaskContext,
             blender: Any) -> TaskResult:
        if kind == TaskKind.RENDER.value:
            return run_render(payload, blender, ctx, self.worker.gpu_ids)
        plan = payload.get("rerender")
        if plan and plan.get("renders"):
            # a re-render renders the whole frame again on this worker's device kind
            renders = [{**r, "device": render_device(r.get("device"), self.worker.gpu_ids).lower()}
                       for r in plan["renders"]]
            payload = {**payload, "rerender": {**plan, "renders": renders}}
        try:
            checked = measured(lambda: run_qc(payload, blender, ctx.log))
        except AttemptError:
            raise
        except Exception as exc:
            from wanhe.blender.errors import BlenderError

            if isinstance(exc, BlenderError):
                raise attempt_error(exc) from exc
            raise
        checked.cpu_s += float(checked.output["qc"].get("rerender_cpu_s", 0.0))  # Blender's
        return checked

    def cancel(self) -> None:
        if self._blender is not None:
            self._blender.kill()  # the whole process tree; a fresh one starts for the next
        if self._box is not None:
            self._box.kill_all()  # and whatever left it

    def close(self) -> None:
        self._closed = True
        self._drop()
