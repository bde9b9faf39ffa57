"""The queue mirror tells the policy which tasks may take either device, and their frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobtypes.test_blender_render import facts
from wanhe.engine.mirror import QueueMirror
from wanhe.jobtypes.blender_render import RenderOptions, compile_render_job, resolve_spec
from wanhe.model import TaskKind
from wanhe.sched.policy import SchedulingPolicy
from wanhe.store.store import Store


@pytest.mark.parametrize("device", ["any", "cpu"])
def test_render_tasks_of_an_any_job_are_grouped_by_frame(tmp_path: Path, device: str) -> None:
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        spec = resolve_spec(RenderOptions(frames="1-2", tiles="2x1", device=device),  # type: ignore[arg-type]
                            facts())
        project = store.ensure_project("p")
        job = store.create_job(project_id=project.id, name="j", kind="blender_render",
                               spec=spec.model_dump(mode="json"), fingerprint=spec.fingerprint(),
                               tasks=compile_render_job(spec, str(tmp_path / "work")))
        mirror = QueueMirror(store, SchedulingPolicy())
        mirror.sync(None, full=True)
        kinds = {t.id: t.kind for t in store.tasks(job)}
        frames = {t.id: t.frame for t in store.tasks(job)}
        queued = list(mirror.queued.values())
        assert queued and all(kinds[q.task_id] == TaskKind.RENDER for q in queued)
        for q in queued:
            assert q.any_device is (device == "any")
            assert q.group == (frames[q.task_id] if device == "any" else None)
        assert mirror.any_device_queued() == (len(queued) if device == "any" else 0)
    finally:
        store.dispose()
