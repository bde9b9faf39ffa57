"""The files routes serve only a job's own output folder: beta, with its own token, leaves a
link in its output folder pointing at the storage root or at alpha's job, and asks for alpha's
bytes through its own job's files route. Every way answers 404, exactly like a missing file."""

from __future__ import annotations

from pathlib import Path

from tests.api.conftest import FAKE_BLEND, Farm


def _two_jobs(farm: Farm) -> tuple[str, int, str, int, Path]:
    alpha = farm.project("alpha")
    beta = farm.project("beta")
    alpha_job = int(farm.submit(alpha)["id"])  # type: ignore[call-overload]
    beta_job = int(farm.submit(beta)["id"])  # type: ignore[call-overload]
    root = farm.settings.storage_root
    alpha_out = root / "jobs" / str(alpha_job) / "output"
    alpha_out.mkdir(parents=True, exist_ok=True)
    (alpha_out / "frame_0001.png").write_bytes(b"alpha's frame")
    return alpha, alpha_job, beta, beta_job, root


def test_a_link_out_of_the_output_folder_is_never_followed(farm: Farm) -> None:
    alpha, alpha_job, beta, beta_job, root = _two_jobs(farm)
    beta_out = root / "jobs" / str(beta_job) / "output"
    beta_out.mkdir(parents=True, exist_ok=True)
    (beta_out / "out0").mkdir()
    (beta_out / "out0" / "own.png").write_bytes(b"beta's frame")
    (beta_out / "out0" / "store").symlink_to(root)  # `ln -s <storage root> {{Param.OutDir}}/store`
    (beta_out / "alpha").symlink_to(root / "jobs" / str(alpha_job))
    (beta_out / "frame.png").symlink_to(root / "jobs" / str(alpha_job) / "output" /
                                        "frame_0001.png")
    (beta_out / "inner.png").symlink_to(beta_out / "out0" / "own.png")  # inside: fine
    c, auth = farm.client, farm.auth(beta)
    assert c.get(f"/api/jobs/{beta_job}/files/out0/own.png", headers=auth).content == \
        b"beta's frame"
    assert c.get(f"/api/jobs/{beta_job}/files/inner.png", headers=auth).content == \
        b"beta's frame"
    stolen = (
        f"out0/store/jobs/{alpha_job}/output/frame_0001.png",
        f"out0/store/jobs/{alpha_job}/input/shot/scene.blend",
        "alpha/output/frame_0001.png",
        "alpha/input/shot/scene.blend",
        "frame.png",
        f"..%2F..%2F{alpha_job}%2Foutput%2Fframe_0001.png",
        f"../../{alpha_job}/output/frame_0001.png",
        "out0/store/blobs",
    )
    missing = c.get(f"/api/jobs/{beta_job}/files/no-such.png", headers=auth)
    assert missing.status_code == 404
    for path in stolen:
        r = c.get(f"/api/jobs/{beta_job}/files/{path}", headers=auth)
        assert r.status_code == 404, path
        assert b"alpha's frame" not in r.content and FAKE_BLEND not in r.content
        if ".." not in path:  # (a client folds a bare `..` into another URL: not ours)
            assert r.json() == {"detail": f"job {beta_job} has no output file {path!r}"}
    # the listings, checksums and latest preview never name the links' targets either
    detail = c.get(f"/api/jobs/{beta_job}", headers=auth).json()
    assert sorted(o["path"] for o in detail["outputs"]) == ["out0/own.png"]
    sums = c.get(f"/api/jobs/{beta_job}/checksums", headers=auth).json()["files"]
    assert [f["path"] for f in sums] == ["out0/own.png"]
    latest = c.get(f"/api/jobs/{beta_job}/latest.png", headers=auth)
    assert b"alpha's frame" not in latest.content
    # alpha still reads its own frame
    r = c.get(f"/api/jobs/{alpha_job}/files/frame_0001.png", headers=farm.auth(alpha))
    assert r.status_code == 200 and r.content == b"alpha's frame"
