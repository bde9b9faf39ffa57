"""Elastic mode on Ray's own autoscaler with simulated nodes: how fast the queue gets nodes.

A head with no cores and Ray's fake multi-node provider (each node a real 1-core raylet on
this machine; see tests/engine/_autoscaling.py). The dispatcher in elastic mode serves a queue
of no-op tasks of `--sleep` seconds; sampled every 0.2 s:

- submit -> first task on a node the autoscaler added (the cluster starts with none);
- submit -> the cluster at its cap (`--max-cores` nodes of 1 core);
- cores idle while the queue is non-empty: ∫ (cluster cores - busy cores) dt over the time
  tasks were waiting, in core-seconds and as a share of the cluster's core-seconds then;
- queue drained -> every added node gone (the slots let go, the autoscaler's idle timeout).

    PYTHONPATH=src .venv/bin/python bench/elastic.py [--tasks 6 --sleep 4 --max-cores 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.engine._autoscaling import (  # noqa: E402
    RAY_ENV,
    AutoscalingCluster,
    alive_worker_nodes,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=6)
    ap.add_argument("--sleep", type=float, default=4.0)
    ap.add_argument("--max-cores", type=int, default=3)
    ap.add_argument("--idle-timeout", type=float, default=4.0)
    args = ap.parse_args()
    os.environ.update(RAY_ENV)
    import ray

    from wanhe.engine import cluster as wanhe_cluster
    from wanhe.engine.dispatcher import Dispatcher
    from wanhe.model import Resources, TaskKind, TaskSpec
    from wanhe.sched.elastic import Caps
    from wanhe.store.store import Store

    work = Path(tempfile.mkdtemp(prefix="wanhe-elastic-bench-"))
    autoscaling = AutoscalingCluster(max_nodes=args.max_cores, idle_timeout_s=args.idle_timeout)
    store = Store(f"sqlite:///{work / 'wanhe.db'}")
    stop = threading.Event()
    dispatcher = None
    try:
        autoscaling.start()
        wanhe_cluster.connect(autoscaling.address)
        dispatcher = Dispatcher(store, threads=1, log_root=work / "logs", elastic=True,
                                caps=Caps(max_cores=args.max_cores), elastic_idle_s=1.0)
        loop = threading.Thread(target=dispatcher.serve, args=(stop,), daemon=True)
        loop.start()
        project = store.create_project("bench")
        specs = [TaskSpec(f"s{i}", TaskKind.NOOP, {"sleep_s": args.sleep},
                          resources=Resources(cpus=1)) for i in range(args.tasks)]
        submitted = time.monotonic()
        job = store.create_job(project_id=project.id, name="bench", kind="noop_bench", spec={},
                               fingerprint=f"b-{submitted}", tasks=specs)
        dispatcher.poke()
        first_task = at_cap = drained = gone = None
        idle_core_s = cluster_core_s = 0.0
        last = submitted
        while time.monotonic() - submitted < 600:
            time.sleep(0.2)
            now = time.monotonic()
            nodes = len(alive_worker_nodes())
            cores = float(ray.cluster_resources().get("CPU", 0.0))  # type: ignore[no-untyped-call]
            attempts = store.attempts(job)
            busy = sum(1 for a in attempts if a["outcome"] is None)
            row = store.job(job)
            waiting = row is not None and not row.state.is_final and (
                args.tasks - sum(1 for a in attempts if a["outcome"] == "ok") - busy > 0)
            if waiting:
                idle_core_s += max(0.0, cores - busy) * (now - last)
                cluster_core_s += cores * (now - last)
            last = now
            if first_task is None and attempts:
                first_task = now - submitted
            if at_cap is None and nodes >= args.max_cores:
                at_cap = now - submitted
            if drained is None and row is not None and row.state.is_final:
                drained = now
            if drained is not None and nodes == 0:
                gone = now - drained
                break
        print(json.dumps({
            "tasks": args.tasks, "sleep_s": args.sleep, "max_cores": args.max_cores,
            "submit_to_first_task_s": first_task, "submit_to_cap_s": at_cap,
            "job_s": None if drained is None else drained - submitted,
            "idle_core_s_while_queued": round(idle_core_s, 1),
            "idle_share_while_queued": round(idle_core_s / cluster_core_s, 3)
            if cluster_core_s else None,
            "drained_to_no_nodes_s": gone,
            "load_average": os.getloadavg()[0],
        }, indent=1))
    finally:
        stop.set()
        if dispatcher is not None:
            dispatcher.close()
        wanhe_cluster.shutdown()
        autoscaling.stop()
        store.dispose()


if __name__ == "__main__":
    main()
