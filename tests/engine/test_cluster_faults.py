"""A worker node dies mid-render: its tasks run again elsewhere, the frames come out bit-exact.

A real multi-node Ray cluster on this machine: a head and two worker nodes, each a
`ray start --block` process in its own session (their pids are kept and only those are
stopped). `wanhe serve --ray-address` runs a tiled job on it; when a render attempt is running
on a worker node, that node's raylet is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from tests.api._service import ServiceProc, free_port, make_project, submit_job, wait_for
from tests.conftest import build_scene
from wanhe.blender.protocol import RenderRequest
from wanhe.blender.runner import BlenderProcess
from wanhe.imaging.exr import read_layers
from wanhe.store.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

RAY = str(Path(sys.executable).with_name("ray"))
# a loopback-only test cluster: no token auth between its own nodes and driver
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}
FRAMES = 3


class Node:
    def __init__(self, args: list[str], log: Path) -> None:
        self._id: str | None = None
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                 "--object-store-memory=150000000", "--disable-usage-stats", *args],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, **RAY_ENV},
            )

    def raylet(self) -> psutil.Process | None:
        try:
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                if child.name() == "raylet" and child.status() != psutil.STATUS_ZOMBIE:
                    return child
        except psutil.Error:
            return None
        return None

    def node_id(self) -> str | None:
        if self._id is None:
            raylet = self.raylet()
            try:
                args = raylet.cmdline() if raylet is not None else []
            except psutil.Error:
                args = []
            for arg in args:
                if arg.startswith("--node_id="):
                    self._id = arg.split("=", 1)[1]
        return self._id

    def stop(self) -> None:
        stop_nodes([self])


def stop_nodes(nodes: list[Node]) -> None:
    """SIGKILL to every node's process group (each node's raylet, GCS and workers are all in
    its group): the cluster is the test's own. SIGTERM, one node after the other, took 20–60 s
    (a node with its head gone, or a head with no driver left, waits out its own timeouts)."""
    for node in nodes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signal.SIGKILL)
    for node in nodes:
        node.proc.wait(timeout=20)


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[tuple[str, list[Node]]]:
    nodes: list[Node] = []
    temps: list[Path] = []
    try:
        for _try in range(3):  # another process may take the free port before Ray binds it
            port = free_port()
            temp = Path("/tmp") / f"wanhe-ray-{os.getpid()}-{port}"
            temps.append(temp)
            head = Node(["--head", f"--port={port}", f"--temp-dir={temp}",
                         "--include-dashboard=false"], tmp_path / "head.log")
            nodes.append(head)
            started = wait_for(lambda h=head: h.node_id() or h.proc.poll() is not None,
                               60, "the Ray head")
            if started is True or head.proc.poll() is not None:
                head.stop()  # it gave up starting: once more, on another port
                nodes.remove(head)
                continue
            break
        assert nodes, "the Ray head did not start (see head.log)"
        address = f"127.0.0.1:{port}"
        time.sleep(2)
        for name in ("node_a", "node_b"):  # one at a time: two cores start them slowly
            args = [f"--address={address}", f"--resources={json.dumps({name: 1})}"]
            for _try in range(2):
                node = Node(args, tmp_path / f"{name}.log")
                nodes.append(node)
                started = wait_for(lambda n=node: n.node_id() or n.proc.poll() is not None,
                                   90, f"Ray node {name}")
                if started is True or node.proc.poll() is not None:
                    node.stop()  # it gave up starting: once more
                    nodes.remove(node)
                    continue
                break
        assert len(nodes) == 3, "the worker nodes did not start (see node_*.log)"
        yield address, nodes
    finally:
        stop_nodes(nodes)
        for temp in temps:  # the nodes' sessions: logs, sockets
            shutil.rmtree(temp, ignore_errors=True)


def test_worker_node_killed_mid_render(
    ray_cluster: tuple[str, list[Node]], tmp_path: Path, scene_dir: Path
) -> None:
    address, nodes = ray_cluster
    scene = build_scene(scene_dir / "tiny_faults.blend", "tiny", "--frames", f"1-{FRAMES}",
                        "--samples", "64")
    svc = ServiceProc(tmp_path / "serve", f"sqlite:///{tmp_path / 'wanhe.db'}", 0)
    svc.extra_args = ["--ray-address", address]
    svc.extra_env = RAY_ENV
    token = make_project(svc.db_url, "faults")
    svc.start()
    store = Store(svc.db_url)
    try:
        job_id = submit_job(svc, token, scene, "--frames", f"1-{FRAMES}", "--tiles", "2x2",
                            "--no-denoise")
        workers = {n.node_id()[-8:]: n for n in nodes[1:]}  # type: ignore[index]

        def victim() -> Node | None:
            for a in store.attempts(job_id):
                if a["outcome"] is None and a["kind"] == "render":
                    node = workers.get(a["node"].rsplit(":", 1)[-1])
                    if node is not None:
                        return node
            return None

        node = wait_for(victim, 180, "a render running on a worker node", interval=0.1)
        raylet = node.raylet()
        assert raylet is not None
        killed_prefix = node.node_id()[-8:]  # type: ignore[index]
        raylet.send_signal(signal.SIGKILL)
        wait_for(lambda: (j := store.job(job_id)) is not None and j.state.is_final, 400,
                 "the job to finish without the dead node")
        job = store.job(job_id)
        assert job is not None and job.state.value == "done", job
        attempts = store.attempts(job_id)
        lost = [a for a in attempts if a["outcome"] == "lost"]
        assert lost and all(a["node"].endswith(killed_prefix) for a in lost)
        for a in lost:  # each lost task ran again, on another node, and finished
            again = [b for b in attempts if b["task_id"] == a["task_id"] and b["outcome"] == "ok"]
            assert len(again) == 1 and not again[0]["node"].endswith(killed_prefix)
        out = svc.home / "storage" / "jobs" / str(job_id) / "output"
        with BlenderProcess() as blender:
            for frame in range(1, FRAMES + 1):
                ref = tmp_path / f"ref{frame}.exr"
                reply = blender.render(RenderRequest(scene=str(scene), frame=frame,
                                                     output=str(ref), threads=1, samples=64))
                assert reply.ok, reply.error
                want = read_layers(ref).channels
                got = read_layers(out / f"frame_{frame:04d}.exr").channels
                assert set(want) <= set(got)
                for name, pixels in want.items():
                    assert np.array_equal(pixels, got[name]), (frame, name)
    finally:
        store.dispose()
        svc.kill(signal.SIGTERM)
