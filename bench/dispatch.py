"""Dispatch latency and throughput of no-op tasks through the real dispatcher and database.

    .venv/bin/python bench/dispatch.py [--workers 4] [--tasks 2000] [--probes 40]
                                       [--postgres URL | --no-postgres]

For SQLite and for PostgreSQL (WANHE_BENCH_POSTGRES_URL, --postgres, or a throwaway server
started like .ci/run does when Debian's postgresql is installed):

- idle latency: a one-task job is written to the database while every worker is idle; time
  from the commit to the attempt's start (as recorded in the database), with a poke (what the
  API does on submit) and without (another process wrote the job: the dispatcher's 0.5 s sync);
- throughput: a job of N zero-second NOOP tasks, from the first start to the last finish;
  tasks/s, and the dispatcher's own ready→running latency (median, p99) under that load.

Prints the command and a markdown table for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from wanhe.engine import cluster
from wanhe.engine.dispatcher import Dispatcher
from wanhe.model import JobState, TaskKind, TaskSpec
from wanhe.store.store import Store


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL server on loopback in a temp dir (like .ci/run), or None if not installed."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions or shutil.which("su") is None:
        yield None
        return
    pgbin = versions[-1].parent
    data = Path(tempfile.mkdtemp(prefix="wanhe-bench-pg."))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    shutil.chown(data, "postgres")
    run = lambda cmd: subprocess.run(["su", "postgres", "-c", cmd], check=True,  # noqa: E731
                                     capture_output=True)
    run(f"{pgbin}/initdb -D {data} -A trust -U postgres")
    run(f"{pgbin}/pg_ctl -D {data} -o '-h 127.0.0.1 -p {port} -k /tmp' -l {data}/log -w start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(["su", "postgres", "-c", f"{pgbin}/pg_ctl -D {data} -m immediate stop"],
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def fresh_database(url: str, tag: str) -> str:
    if url.startswith("sqlite"):
        return url
    import sqlalchemy as sa

    name = f"wanhe_bench_{tag}_{os.getpid()}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


def noop_job(store: Store, project_id: int, n: int, tag: str) -> int:
    tasks = [TaskSpec(f"n{i:06d}", TaskKind.NOOP, {"sleep_s": 0.0}) for i in range(n)]
    return store.create_job(project_id=project_id, name=tag, kind="noop", spec={},
                            fingerprint=f"{tag}-{time.time()}", tasks=tasks)


def wait_done(store: Store, job_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.job(job_id)
        if job is not None and job.state is JobState.DONE:
            return
        time.sleep(0.02)
    raise TimeoutError(f"job {job_id} did not finish in {timeout} s")


def measure(url: str, label: str, workers: int, tasks: int, probes: int) -> dict[str, object]:
    store = Store(url)
    project = store.create_project(f"bench-{label}-{os.getpid()}")
    dispatcher = Dispatcher(store, workers=workers, log_root=Path(tempfile.mkdtemp()) / "logs")
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        warm = noop_job(store, project.id, workers * 4, "warm-up")
        wait_done(store, warm, 180)
        idle: dict[bool, list[float]] = {True: [], False: []}
        for i in range(probes):
            poke = i % 2 == 0
            time.sleep(0.3)  # every worker idle
            created = time.time()
            job_id = noop_job(store, project.id, 1, "probe")
            if poke:
                dispatcher.poke()
            wait_done(store, job_id, 30)
            started = store.attempts(job_id)[0]["started_at"]
            idle[poke].append(started - created)
        dispatcher.dispatch_latencies.clear()
        t0 = time.time()
        job_id = noop_job(store, project.id, tasks, "throughput")
        dispatcher.poke()
        wait_done(store, job_id, 900)
        attempts = store.attempts(job_id)
        first = min(a["started_at"] for a in attempts)
        last = max(a["ended_at"] for a in attempts)
        loaded = list(dispatcher.dispatch_latencies)
        return {
            "db": label, "workers": len(dispatcher.slots), "tasks": tasks,
            "idle_poke_med": statistics.median(idle[True]), "idle_poke_p99": pct(idle[True], .99),
            "idle_sync_med": statistics.median(idle[False]),
            "idle_sync_p99": pct(idle[False], .99),
            "tput": tasks / (last - first), "wall": last - t0,
            "load_med": statistics.median(loaded), "load_p99": pct(loaded, .99),
        }
    finally:
        stop.set()
        dispatcher.poke()
        thread.join(timeout=30)
        dispatcher.close()
        store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--postgres", default=os.environ.get("WANHE_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    command = "python " + " ".join(["bench/dispatch.py", *sys.argv[1:]])
    cluster.connect(None, num_cpus=args.workers)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure(f"sqlite:///{tmp}/bench.db", "SQLite", args.workers, args.tasks,
                            args.probes))
    if not args.no_postgres:
        with contextlib.ExitStack() as stack:
            url = args.postgres or stack.enter_context(throwaway_postgres())
            if url is None:
                print("PostgreSQL: not installed; pass --postgres URL", file=sys.stderr)
            else:
                rows.append(measure(fresh_database(url, "pg"), "PostgreSQL", args.workers,
                                    args.tasks, args.probes))
    cluster.shutdown()
    cores = os.cpu_count()
    print(f"\n`{command}` ({cores} cores, {args.workers} NOOP worker slots on embedded Ray)\n")
    print("| database | idle → running, poked: median / p99 | idle → running, sync only: "
          "median / p99 | throughput | queue wait under load: median / p99 |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['db']} | {1000 * r['idle_poke_med']:.0f} / {1000 * r['idle_poke_p99']:.0f}"
              f" ms | {1000 * r['idle_sync_med']:.0f} / {1000 * r['idle_sync_p99']:.0f} ms | "
              f"{r['tput']:.0f} tasks/s ({r['tasks']} tasks, {r['workers']} slots) | "
              f"{1000 * r['load_med']:.0f} / {1000 * r['load_p99']:.0f} ms |")


if __name__ == "__main__":
    main()
