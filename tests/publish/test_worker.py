"""The publisher's choices that need no Kitsu: what to show for a job, what its comment says,
and that a job that did not finish done publishes nothing (with the reason)."""

from __future__ import annotations

from pathlib import Path

from wanhe.model import TaskKind, TaskSpec
from wanhe.publish.worker import (
    KitsuPublisher,
    comment_text,
    marker,
    pick_media,
    pick_openjd_media,
)
from wanhe.storage import Storage, StoredFile
from wanhe.store.kitsu import PublishTo
from wanhe.store.store import Store


def _files(*names: str) -> list[StoredFile]:
    return [StoredFile(name, 100 + i, 0.0) for i, name in enumerate(names)]


def _picked(*names: str) -> str | None:
    found = pick_media(_files(*names))
    return None if found is None else found.path


def test_the_movie_comes_first_then_the_contact_sheet_then_the_last_frame() -> None:
    frames = ("frame_0001.exr", "frame_0001.png", "frame_0002.png")
    assert _picked(*frames, "shot.mp4", "shot_contact.png") == "shot.mp4"
    assert _picked(*frames, "shot_contact.png") == "shot_contact.png"
    assert _picked(*frames) == "frame_0002.png"
    assert _picked("frame_0001.exr") is None  # Kitsu shows no EXR


def test_an_openjd_job_shows_its_newest_movie_else_its_newest_image_in_its_out_folders(
        ) -> None:
    def newest(*files: tuple[str, float]) -> str | None:
        found = pick_openjd_media([StoredFile(path, 100, at) for path, at in files])
        return None if found is None else found.path

    assert newest(("out0/zz.png", 1.0), ("out0/aa.png", 2.0)) == "out0/aa.png"
    assert newest(("out0/a.png", 3.0), ("out1/cut.mp4", 1.0)) == "out1/cut.mp4"
    assert newest(("frame.png", 9.0), ("out0/a.exr", 9.0), ("out0/b.txt", 9.0)) is None


def _job(store: Store) -> int:
    project = store.create_project("lionboy")
    return store.create_job(project_id=project.id, name="sh010 lighting", kind="noop",
                            spec={"samples": 64}, fingerprint="f1", submitter="ana",
                            tasks=[TaskSpec("n0", TaskKind.NOOP, {}, frame=1),
                                   TaskSpec("n1", TaskKind.NOOP, {}, frame=2)])


def test_the_comment_names_frames_samples_cost_submitter_and_link(db_url: str) -> None:
    store = Store(db_url)
    try:
        job_id = _job(store)
        text = comment_text(store, job_id, f"http://farm/#/jobs/{job_id}")
    finally:
        store.dispose()
    assert marker(job_id) in text
    for part in ("frames 1-2 (2)", "samples 64", "core-hours 0.000, GPU-hours 0.000",
                 "submitted by ana", f"http://farm/#/jobs/{job_id}"):
        assert part in text


def test_a_cancelled_job_is_skipped_with_the_reason(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    try:
        job_id = _job(store)
        project = store.project_by_name("lionboy")
        assert project is not None
        store.add_publication(job_id, project.id, PublishTo("SQ01/SH010", "Lighting"))
        publisher = KitsuPublisher(store, Storage(tmp_path / "storage"), home=tmp_path,
                                   public_url="http://farm")
        assert publisher.run_due() == 0  # the job has not ended: nothing is due
        store.cancel_job(job_id)
        assert publisher.run_due() == 1
        found = store.publication(job_id)
        assert found is not None and found.state == "skipped"
        assert found.message == "not published: the job cancelled"
        assert publisher.run_due() == 0  # handled once
    finally:
        store.dispose()
