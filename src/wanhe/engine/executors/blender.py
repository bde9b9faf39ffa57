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


EXR_MAGIC = b"\x76\x2f\x31\x01"


def _renders_for_cache(payload: dict[str, Any], ctx: TaskContext) -> bool:
    """Whether a render is a farm job's whose output lies outside the job's folder, on a
    farm that sandboxes (see `BlenderExecutor._render_for_cache`)."""
    from wanhe.sandbox.tool import sandboxed

    root = payload.get("job_root")
    return bool(root) and sandboxed(root, ctx.project) and _outside_job(payload)


def _outside_job(payload: dict[str, Any]) -> bool:
    """Whether a farm job's render writes outside the job's folder (`job_root`)."""
    output = Path(str(payload.get("output") or "")).absolute()
    return Path(str(payload["job_root"])).absolute() not in output.parents


def _job_scene_path(scene: Path, root: Path) -> Path:
    """Where the job's sandbox shows `scene` (see `_scene_in_job`), nothing copied."""
    from wanhe.storage import OutsideJob, within_job

    try:
        return within_job(str(scene), str(root))
    except OutsideJob:
        return root / "input" / ".cache" / scene.name


def _scene_in_job(scene: Path, root: Path) -> Path:
    """`scene` where the job's sandbox shows it: a file of the job's own as it is; one from
    the farm's cache (a keyed copy the job's lip sync made) copied once into the job's
    `input/.cache/` (the farm's, read-only to the job), under the same content-keyed name."""
    shown = _job_scene_path(scene, root)
    if shown.parent != root / "input" / ".cache":
        return shown  # the job's own file
    folder = shown.parent
    folder.mkdir(mode=0o750, exist_ok=True)
    if os.geteuid() == 0:  # the job's group reads its input (wanhe.sandbox.accounts)
        os.chown(folder, 0, (root / "input").stat().st_gid)
    copy = folder / scene.name
    held = copy.lstat() if copy.is_symlink() or copy.exists() else None
    if held is None or held.st_size != scene.stat().st_size:
        import shutil

        partial = folder / f".{scene.name}.{os.getpid()}.part"
        with open(scene, "rb") as src, open(partial, "xb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(partial, 0o644)
        os.replace(partial, copy)
    return copy


def _take_exr(folder: Path, name: str, final: Path) -> None:
    """Copy the EXR a sandboxed Blender wrote as `folder/name` to `final` (the farm's cache):
    a regular file only (never a link it left to elsewhere), and one that reads as an EXR."""
    import shutil

    try:
        fd = os.open(folder / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        raise TaskFailed("Blender wrote no EXR") from None
    with os.fdopen(fd, "rb") as src:
        import stat

        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode) or src.read(4) != EXR_MAGIC:
            raise TaskFailed("what Blender left as the frame is not an EXR")
        src.seek(0)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.stem}.{os.getpid()}.part.exr")
        try:
            with open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)


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
            # Between tasks it holds nothing to save: killed, not asked to quit, whose exit
            # frees every datablock first (0.3–0.5 s the end of a `wanhe render` waited for).
            self._blender.kill()
            self._blender = None
        if self._box is not None:
            self._box.close()
        self._box, self._box_key = None, None

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        scene = payload.get("scene") or (payload.get("rerender") or {}).get("scene")
        root = payload.get("job_root")
        if scene and root and _outside_job(payload):
            # where its render opens it: in the job's folder, so that a warm-up (`warm`)
            # leaves it to the job's sandbox instead of loading it unconfined
            return str(_job_scene_path(Path(str(scene)), Path(str(root))))
        return str(scene) if scene else None

    def warm(self, key: str) -> None:
        from wanhe.sandbox.box import mode

        if mode().on and job_root_of(key) is not None:
            return  # whose job it is is known at its first task: the sandbox is made then
        self.process().warm(key)  # opens the scene and keeps it loaded

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        if kind == TaskKind.RENDER.value and _renders_for_cache(payload, ctx):
            return self._render_for_cache(payload, ctx)
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

    def _render_for_cache(self, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        """A farm job's frame whose EXR goes outside the job's folder (a storyboard's Blender
        shot: the farm's shared story cache): rendered in the job's sandbox like any of its
        frames, into a scratch folder in its `work/` (a scene from the cache — a lip-synced
        copy — is first copied into the job's input), then copied into the cache as the
        farm's own regular file."""
        import shutil
        import tempfile

        root = Path(payload["job_root"])
        final = Path(payload["output"])
        scene = _scene_in_job(Path(payload["scene"]), root)
        scratch = Path(tempfile.mkdtemp(prefix="render-", dir=root / "work"))
        try:
            inner = {**payload, "scene": str(scene), "output": str(scratch / final.name)}
            result = self.run(TaskKind.RENDER.value, inner, ctx)  # now inside the job
            _take_exr(scratch, final.name, final)
            result.output["exr"] = str(final)
            return result
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _own(self, folder: Path) -> None:
        """Hand a folder the worker made for a task to the sandbox's user."""
        box = self._box
        if box is None or not box.account.isolated:
            return
        folder.mkdir(parents=True, exist_ok=True)
        os.chown(folder, box.account.uid, box.account.gid)

    def _run(self, kind: str, payload: dict[str, Any], ctx: TaskContext,
             blender: Any) -> TaskResult:
        # Here, not at the top: they import numpy and the image checks (≈0.2 s), which a
        # `wanhe render` imports while its Blender starts rather than before (`process`).
        from wanhe.engine.frame_checks import run_qc
        from wanhe.engine.frame_steps import attempt_error, render_device, run_render

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
