"""A Ray cluster with Ray's own autoscaler deciding, on simulated nodes of this machine.

Ray ships a fake multi-node provider for its autoscaler tests (`fake_multinode`: each "node"
the autoscaler launches is a real raylet started on this machine, with the resources of its
node type). `ray.cluster_utils.AutoscalingCluster` wraps it, but starts and stops with `ray
stop --force`, which would kill every Ray of this shared machine, and reads a default config
the installed wheel does not ship. So this starts the same thing itself: a head (`ray start
--head --autoscaling-config=...` with RAY_FAKE_CLUSTER=1) in a session of its own, on a free
port and a temp dir of its own; and stops only the processes of that session and temp dir.

Used by tests/engine/test_elastic.py and bench/elastic.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
# a loopback-only test cluster: no token auth between its own nodes and driver
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}
NODE_TYPE = "cpu_node"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def autoscaler_config(port: int, *, max_nodes: int, node_cpus: int = 1,
                      idle_timeout_s: float = 6.0) -> dict[str, Any]:
    """The autoscaler's cluster config: a head of no cores and one worker type of
    `node_cpus` cores, from 0 to `max_nodes` nodes."""
    return {
        "cluster_name": f"wanhe-test-{port}",
        "max_workers": max_nodes,
        "upscaling_speed": float(max_nodes),
        "idle_timeout_minutes": idle_timeout_s / 60,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "launch_multiple": True,
            "gcs_address": f"127.0.0.1:{port}",
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            NODE_TYPE: {
                "resources": {"CPU": node_cpus, "object_store_memory": 80 * 1024**2},
                "node_config": {}, "min_workers": 0, "max_workers": max_nodes,
            },
        },
        "head_node_type": "ray.head.default",
        "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class AutoscalingCluster:
    def __init__(self, *, max_nodes: int = 3, idle_timeout_s: float = 6.0,
                 log: Path | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = Path(tempfile.mkdtemp(prefix=f"wanhe-as-{self.port}-", dir="/tmp"))
        self.config = self.temp / "autoscaler.json"
        self.config.write_text(json.dumps(
            autoscaler_config(self.port, max_nodes=max_nodes, idle_timeout_s=idle_timeout_s)))
        self.log = log or self.temp / "head.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, **RAY_ENV, "RAY_FAKE_CLUSTER": "1",
               "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [RAY, "start", "--head", "--block", f"--port={self.port}",
                 f"--temp-dir={self.temp}", "--node-ip-address=127.0.0.1", "--num-cpus=0",
                 "--include-dashboard=false", "--disable-usage-stats",
                 "--object-store-memory=80000000", f"--autoscaling-config={self.config}"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Ray head exited; see {self.log}")
            if self._monitor_up():
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Ray head and its autoscaler did not start in {timeout} s")

    def _mine(self) -> Iterator[psutil.Process]:
        """The processes of this cluster: the head's session, and any naming its temp dir."""
        if self.proc is None:
            return
        sid = self.proc.pid  # start_new_session: the session id is the head's pid
        tag = str(self.temp)
        for p in psutil.process_iter(["pid", "cmdline"]):
            try:
                if p.pid == os.getpid():
                    continue
                if os.getsid(p.pid) == sid or any(tag in a for a in (p.info["cmdline"] or [])):
                    yield p
            except (psutil.Error, OSError):
                continue

    def _monitor_up(self) -> bool:
        return any("monitor.py" in " ".join(p.cmdline()) for p in self._mine()
                   if p.is_running())

    def raylets(self) -> dict[str, psutil.Process]:
        """node id -> raylet process, for every node up now (the head's too)."""
        out = {}
        for p in self._mine():
            with contextlib.suppress(psutil.Error):
                if p.name() == "raylet" and p.status() != psutil.STATUS_ZOMBIE:
                    for arg in p.cmdline():
                        if arg.startswith("--node_id="):
                            out[arg.split("=", 1)[1]] = p
        return out

    def stop(self) -> None:
        procs = list(self._mine())
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=10)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        if not self.log.is_relative_to(self.temp):
            shutil.rmtree(self.temp, ignore_errors=True)  # Ray's session files and logs


def alive_worker_nodes() -> list[str]:
    """Ids of the live nodes that have cores (the head has none)."""
    import ray

    return [n["NodeID"] for n in ray.nodes()  # type: ignore[no-untyped-call]
            if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
