"""The service's Kitsu publisher: when a job with a shot and task ends, its preview lands on
that shot's task as a new revision, off the job's critical path.

One background thread reads the due publications from the database (so a restart forgets
nothing), and for each one whose job finished done picks what to show (the preview movie,
else the contact sheet, else the last frame), logs in with the project's sealed credentials
and publishes it with a comment and a status change. A failed try that may work later (Kitsu
down, erroring) is retried with backoff; a wrong mapping (no such shot or task) fails at once
with the reason; a job that failed or was cancelled is skipped. A generation job publishes
the candidate a person picks (`wanhe.publish.pick`): finished, it waits for the pick.
`publish_preview` finds the comment an interrupted try made, so a publication lands exactly
once.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from gazu.client import KitsuClient

from wanhe.model import JobState
from wanhe.publish import kitsu
from wanhe.publish.pick import Pick, find_pick, recipe_lines
from wanhe.publish.reel import reel_frames
from wanhe.publish.secrets import SecretUnreadable, unseal
from wanhe.storage import Storage, StoredFile
from wanhe.store.kitsu import PublicationRow
from wanhe.store.rows import JobRow
from wanhe.store.store import Store, core_seconds

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (2.0, 5.0, 15.0, 60.0, 300.0, 900.0)
# a finished gen job waits for a person's pick: the pick wakes the publisher at once, and this
# slow look again catches one the wake missed (a pick while the service restarted, say)
PICK_RECHECK_S = 600.0
MOVIE_SUFFIXES = (".mp4", ".mov", ".webm")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
OUT_FOLDER = re.compile(r"^out\d+/")  # an OpenJD job's OUT/INOUT folders among its outputs


class WaitsForPick(Exception):
    """A finished gen job nobody has picked a candidate of yet: nothing to publish now."""


def marker(job_id: int) -> str:
    """The words every comment of job `job_id` carries: how a retry finds an earlier try's."""
    return f"[wanhe job {job_id}]"


def pick_media(files: list[StoredFile]) -> StoredFile | None:
    """What to show for a job: its movie, else its contact sheet, else its last frame."""
    def suffix(f: StoredFile) -> str:
        return PurePosixPath(f.path).suffix.lower()

    movies = [f for f in files if suffix(f) in MOVIE_SUFFIXES]
    if movies:
        return max(movies, key=lambda f: f.size)
    images = sorted((f for f in files if suffix(f) in IMAGE_SUFFIXES), key=lambda f: f.path)
    sheets = [f for f in images if PurePosixPath(f.path).stem.endswith("_contact")]
    return sheets[-1] if sheets else (images[-1] if images else None)


def pick_openjd_media(files: list[StoredFile]) -> StoredFile | None:
    """What to show for an OpenJD job: the newest movie among its OUT (and INOUT) outputs
    (`outN/…`), else the newest image; a template names its files as it likes, so "newest"
    stands for "what it made last" (the encode after the frames, the final frame)."""
    def suffix(f: StoredFile) -> str:
        return PurePosixPath(f.path).suffix.lower()

    made = [f for f in files if OUT_FOLDER.match(f.path)]
    for kinds in (MOVIE_SUFFIXES, IMAGE_SUFFIXES):
        found = [f for f in made if suffix(f) in kinds]
        if found:
            return max(found, key=lambda f: (f.modified, f.path))
    return None


def comment_text(store: Store, job_id: int, job_url: str) -> str:
    """The comment under the revision: what was rendered, what it cost, who sent it, where."""
    job = store.job(job_id)
    assert job is not None
    frames = sorted({t.frame for t in store.tasks(job_id) if t.frame is not None})
    lines = [f"Rendered on wanhe: {job.name} {marker(job_id)}"]
    if frames:
        lines.append(f"frames {frames[0]}-{frames[-1]} ({len(frames)})")
    samples = _samples(job.spec)
    if samples:
        lines.append(f"samples {samples}")
    return "\n".join(lines + _cost_lines(store, job_id, job.submitter, job_url))


def pick_comment_text(store: Store, job_id: int, chosen: Pick, job_url: str) -> str:
    """The comment under a gen pick: which candidate, the recipe that made it, the cost."""
    job = store.job(job_id)
    assert job is not None
    lines = [f"Picked on wanhe: {job.name} {marker(job_id)}",
             f"{chosen.shot_name}, candidate {chosen.candidate}", *recipe_lines(chosen)]
    return "\n".join(lines + _cost_lines(store, job_id, job.submitter, job_url))


def _cost_lines(store: Store, job_id: int, submitter: str, job_url: str) -> list[str]:
    attempts = store.attempts(job_id)
    core_h = sum(core_seconds(a) for a in attempts) / 3600
    gpu_h = sum(float(a["gpu_s"] or 0.0) for a in attempts) / 3600
    return [f"core-hours {core_h:.3f}, GPU-hours {gpu_h:.3f}",
            f"submitted by {submitter or 'unknown'}", job_url]


def _samples(spec: dict[str, Any]) -> int | None:
    for key in ("samples", "scene_samples"):
        value = spec.get(key) or (spec.get("options") or {}).get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


class KitsuPublisher:
    """The background publisher (`start`, `wake`, `close`)."""

    def __init__(self, store: Store, storage: Storage, *, home: Path, public_url: str,
                 settle: Callable[[int], None] = lambda _job: None,
                 poll_s: float = 2.0) -> None:
        self.store = store
        self.storage = storage
        self.home = home
        self.public_url = public_url.rstrip("/")
        self.settle = settle
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="wanhe-kitsu", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:  # the database away a moment: look again next round
                log.exception("Kitsu publishing round failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_due(self, now: float | None = None) -> int:
        """Publish (or skip) every due publication; how many were handled."""
        due = self.store.due_publications(time.time() if now is None else now)
        for publication, job_state in due:
            if self._stop.is_set():
                break
            self._handle(publication, job_state)
        return len(due)

    def _handle(self, pub: PublicationRow, job_state: JobState) -> None:
        if job_state is not JobState.DONE:
            self.store.update_publication(
                pub.job_id, state="skipped",
                message=f"not published: the job {job_state.value}")
            return
        tries = pub.tries + 1
        try:
            published, media, note, left_out = self._publish(pub)
        except WaitsForPick as exc:  # not a try: nothing was sent
            self.store.update_publication(pub.job_id, next_at=time.time() + PICK_RECHECK_S,
                                          message=str(exc))
            return
        except kitsu.KitsuError as exc:
            self._retry_later(pub.job_id, tries, exc)
            return
        except (SecretUnreadable, ValueError, FileNotFoundError) as exc:
            self.store.update_publication(pub.job_id, state="failed", tries=tries,
                                          message=str(exc))
            return
        except Exception as exc:  # storage away a moment, say: retried like an outage
            log.exception("job %d: Kitsu publish try %d failed", pub.job_id, tries)
            self._retry_later(pub.job_id, tries, kitsu.KitsuError(
                f"{type(exc).__name__}: {exc}", retry=True))
            return
        self.store.update_publication(
            pub.job_id, state="partial" if left_out else "published", tries=tries,
            message=f"published {media}{note}",
            comment_id=published.comment_id, preview_id=published.preview_id,
            revision=published.revision, file=media, published_at=time.time(),
            task_id=published.task_id)
        log.info("job %d published to Kitsu: %s %s revision %d", pub.job_id, pub.shot,
                 pub.task, published.revision)

    def _retry_later(self, job_id: int, tries: int, exc: kitsu.KitsuError) -> None:
        """Try again after the next backoff delay, or give up (failed) with the reason."""
        if exc.retry and tries <= len(RETRY_DELAYS_S):
            delay = RETRY_DELAYS_S[tries - 1]
            log.warning("job %d: Kitsu publish try %d failed, next in %.0f s: %s",
                        job_id, tries, delay, exc)
            self.store.update_publication(
                job_id, tries=tries, next_at=time.time() + delay,
                message=f"try {tries} failed, retrying in {delay:.0f} s: {exc}")
        else:
            log.warning("job %d: Kitsu publish failed: %s", job_id, exc)
            self.store.update_publication(job_id, state="failed", tries=tries,
                                          message=str(exc))

    def _publish(self, pub: PublicationRow) -> tuple[kitsu.Published, str, str, list[str]]:
        """(the revision, the output it shows, a note on what else went, the shots left
        out)."""
        link = self.store.kitsu_link(pub.project_id)
        if link is None:
            raise ValueError("the project is no longer linked to Kitsu — wanhe kitsu link")
        job = self.store.job(pub.job_id)
        assert job is not None
        job_url = f"{self.public_url}/#/jobs/{pub.job_id}"
        if job.kind == "gen":
            return (*self._publish_pick(link.url, link.production_id, link.secret, pub, job,
                                        job_url), [])
        self.settle(pub.job_id)
        outputs = self.storage.outputs(pub.job_id)
        client = kitsu.connect(link.url, unseal(self.home, link.secret))
        text = comment_text(self.store, pub.job_id, job_url)
        if job.kind == "story":
            return self._publish_reel(client, link.production_id, pub, job.spec, outputs, text)
        media = pick_openjd_media(outputs) if job.kind == "openjd" else pick_media(outputs)
        if media is None:
            raise FileNotFoundError("the job has no movie or image output to publish")
        task = kitsu.shot_task(client, link.production_id, pub.shot, pub.task)
        return self._send(client, task, pub.job_id, media.path, text), media.path, "", []

    def _publish_pick(self, url: str, production_id: str, secret: str, pub: PublicationRow,
                      job: JobRow, job_url: str) -> tuple[kitsu.Published, str, str]:
        """A gen job: its picked candidate to the shot's storyboard task, the recipe in the
        comment; WaitsForPick while nobody has picked one (no Kitsu call until then)."""
        chosen = find_pick(self.store, job)
        if chosen is None:
            raise WaitsForPick(f"waits for a pick: wanhe gen pick {pub.job_id} SHOT CANDIDATE "
                               "(or p on the job's contact sheet)")
        self.settle(pub.job_id)
        client = kitsu.connect(url, unseal(self.home, secret))
        task = kitsu.shot_task(client, production_id, pub.shot, pub.task)
        text = pick_comment_text(self.store, pub.job_id, chosen, job_url)
        published = self._send(client, task, pub.job_id, chosen.file, text)
        return published, chosen.file, f" ({chosen.shot_name}, candidate {chosen.candidate})"

    def _send(self, client: KitsuClient, task: dict[str, Any], job_id: int,
              relative: str, text: str) -> kitsu.Published:
        """One output of the job as a revision of `task` (a local copy for a URL storage)."""
        scratch = Path(tempfile.mkdtemp(prefix="wanhe-kitsu-"))
        try:
            local = self.storage.local_output(job_id, relative)
            if local is None:
                local = self.storage.fetch_output(job_id, relative, scratch)
            return kitsu.publish_preview(client, task, marker=marker(job_id), text=text,
                                         media=local)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _publish_reel(self, client: KitsuClient, production_id: str,
                      pub: PublicationRow, spec: dict[str, Any], outputs: list[StoredFile],
                      text: str) -> tuple[kitsu.Published, str, str, list[str]]:
        """A story reel: each shot's clip to SEQUENCE/<shot id>, then the reel to the
        sequence's own task. A shot Kitsu does not have is created (with its frames in the
        reel) when the reel was sent with --create-shots, else left out and named. Every part
        carries the job's marker on its own task, so a retry sends only what did not land."""
        have = {f.path for f in outputs}
        if "reel.mp4" not in have:
            raise FileNotFoundError("the story job has no reel.mp4 to publish")
        board = spec.get("board") or {}
        shot_ids = [str(shot["id"]) for scene in board.get("scenes") or []
                    for shot in scene.get("shots") or []]
        frames = reel_frames(self.store, pub.job_id, spec) if pub.create_shots else {}
        sent, missing, created = 0, [], []
        for sid in shot_ids:
            clip = f"shots/{sid}.mp4"
            if clip not in have:
                missing.append(sid)
                continue
            try:
                task = kitsu.shot_task(client, production_id, f"{pub.shot}/{sid}", pub.task)
            except kitsu.KitsuError as exc:
                if exc.retry:
                    raise
                if not pub.create_shots:
                    missing.append(sid)
                    continue
                span = frames.get(sid)
                task = kitsu.create_shot_task(
                    client, production_id, pub.shot, sid, pub.task,
                    frame_in=span.frame_in if span else None,
                    frame_out=span.frame_out if span else None,
                    nb_frames=span.nb_frames if span else None)
                created.append(sid)
            self._send(client, task, pub.job_id, clip, f"Shot {sid} of the reel\n{text}")
            sent += 1
        reel_task = kitsu.sequence_task(client, production_id, pub.shot,
                                        pub.reel_task or pub.task)
        published = self._send(client, reel_task, pub.job_id, "reel.mp4", text)
        note = f" to {pub.shot}, {sent} clip(s) to their shots"
        if created:
            note += f" (created in Kitsu: {', '.join(created)})"
        if missing:
            note += (f"; not in Kitsu, left out: {', '.join(missing)} (--create-shots "
                     "creates them)")
        return published, "reel.mp4", note, missing
