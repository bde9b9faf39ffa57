"""A farm task checks its init image again when it runs (resolve, then check), by rule and
before opening it: a payload naming a file outside its job fails with that reason, never
with what the file turned out to be ("cannot identify image file")."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanhe.ai.pipelines import _own_file
from wanhe.lifecycle import TaskFailed


def test_an_init_image_outside_the_job_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "2"
    (job / "input").mkdir(parents=True)
    own = job / "input" / "still.png"
    own.write_bytes(b"png")
    payload = {"job_root": str(job)}
    assert _own_file(str(own), payload) == str(own)
    token = tmp_path / "auth_token"
    token.write_text("secret")
    (job / "input" / "link.png").symlink_to(token)
    for path in (str(token), str(job / "input" / "link.png"),
                 str(job / "input" / ".." / ".." / "1" / "output" / "frame_0001.png")):
        with pytest.raises(TaskFailed, match="is outside this job's files"):
            _own_file(path, payload)
    assert _own_file(str(token), {}) == str(token)  # a local run: the user's own file
