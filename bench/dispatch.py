"""Dispatch latency and throughput of no-op tasks through the real dispatcher and database.

    .venv/bin/python bench/dispatch.py [--workers 4] [--tasks 2000] [--probes 40]
                                       [--postgres URL | --no-postgres]

For SQLite and for PostgreSQL (WANHE_BENCH_POSTGRES_URL, --postgres, or a throwaway server
started by initdb + pg_ctl when Debian's postgresql is installed):

- idle latency: a one-task job is written to the database while every worker is idle; time
  from the commit to the attempt's start (as recorded in the database), with a poke (what the
  API does on submit) and without (another process wrote the job: the dispatcher's 0.5 s sync);
- throughput: a job of N zero-second NOOP tasks, from the first start to the last finish;
  tasks/s, and the dispatcher's own ready→running latency (median, p99) under that load.

Prints the command and a markdown table for bench/RESULTS.md.

    .venv/bin/python bench/dispatch.py --local-slots 200 [--tasks 5000] [--probes 4]
                                       [--instant] [--profile] [--no-postgres]

The dispatcher's own figure: many more worker slots than cores (in-process workers, no Ray:
a no-op task costs its worker microseconds), so what limits tasks/s is the dispatcher and its
database, not this machine's cores. --instant: the slots are no-op handles whose answer is
ready the moment the task is sent (no worker threads competing with the dispatcher for this
2-core machine): the dispatcher's ceiling. Each run also reports the dispatcher thread's own
CPU time per task (what bounds tasks/s whatever the machine's load). --profile prints where
the dispatcher's thread spends its time (cProfile, the largest entries). Run it with
PYTHONPATH=<another tree>/src to measure that tree with the same script.

    .venv/bin/python bench/dispatch.py --sync [--sync-tasks 100000] [--pg-sync-tasks 100000]
                                       [--runs 5] [--baseline-src /tmp/old-wanhe/src]

The cost of one `Dispatcher.sync()` (what the dispatcher does every 0.5 s and on a poke) with a
job of N ready tasks in the database, no Ray involved: the first sync (loads the queue), a sync
with nothing changed, one after another connection changed a job's priority, one after it
submitted a 10-task job, and a forced full resync (the slow-period safety net). Each run is a
fresh process; with --baseline-src the runs alternate between that source tree (e.g. a
`git worktree` of the previous commit) and this one, each on its own database, and the table
gives both medians and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy import event

from wanhe.engine import cluster
from wanhe.engine.dispatcher import Dispatcher, Slot
from wanhe.model import JobState, TaskKind, TaskSpec
from wanhe.store.store import Store

# the throwaway PostgreSQL's data folder, while it runs: its server's CPU is measured too
PG_DATA: list[Path] = []


def server_cpu_s() -> float | None:
    """CPU seconds (user + system) of the throwaway PostgreSQL server: its postmaster and every
    backend now alive (the dispatcher's pooled connections stay open through a run)."""
    if not PG_DATA:
        return None
    import psutil

    pid = int((PG_DATA[0] / "postmaster.pid").read_text().split()[0])
    total = 0.0
    postmaster = psutil.Process(pid)
    for proc in [postmaster, *postmaster.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL server on loopback in a temp dir, or None if not installed (durable, unlike
    the tests' throwaway one in tests/_postgres.py: fsync stays on for honest timings)."""
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
    PG_DATA.append(data)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        PG_DATA.clear()
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


class InstantWorker:
    """A worker handle whose no-op task has answered by the time `call` returns: what is left
    of a task's cost is the dispatcher's and its database's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, method: str, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        if method == "run":
            future.set_result({"ok": True, "node": "bench:instant", "worker": self.name,
                               "wall_s": 0.0, "output": {}})
        elif method == "activity":
            future.set_result({"progress": 0.0, "status": ""})
        else:
            future.set_result(None)
        return future

    def kill(self) -> None:
        pass

    def lost(self, exc: BaseException) -> str | None:
        return f"{type(exc).__name__}: {exc}"


def measure(url: str, label: str, workers: int, tasks: int, probes: int, *,
            local_slots: int = 0, instant: bool = False,
            profile: bool = False) -> dict[str, object]:
    store = Store(url)
    project = store.create_project(f"bench-{label}-{os.getpid()}")
    logs = Path(tempfile.mkdtemp()) / "logs"
    if local_slots and instant:
        dispatcher = Dispatcher(store, workers=local_slots, log_root=logs, use_ray=False)
        dispatcher.pool.slots.extend(
            Slot(name=f"i{i}", worker=InstantWorker(f"i{i}"), cpus=1.0, node="bench:instant",
                 local=True) for i in range(local_slots))
    elif local_slots:
        from wanhe.engine.handles import LocalWorker

        dispatcher = Dispatcher(store, workers=local_slots, log_root=logs, use_ray=False,
                                local_workers=[LocalWorker(f"w{i}") for i in range(local_slots)])
    else:
        dispatcher = Dispatcher(store, workers=workers, log_root=logs)
    stop = threading.Event()
    serving: list[int] = []  # the dispatcher thread's id, for its CPU clock
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()

    def serve() -> None:
        serving.append(threading.get_ident())
        if profiler is None:
            dispatcher.serve(stop)
            return
        profiler.enable()
        try:
            dispatcher.serve(stop)
        finally:
            profiler.disable()

    thread = threading.Thread(target=serve, daemon=True)
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
        clock = time.pthread_getcpuclockid(serving[0])
        job_id = noop_job(store, project.id, tasks, "throughput")
        t0 = time.time()
        cpu0 = time.clock_gettime(clock)
        server0 = server_cpu_s() if label == "PostgreSQL" else None
        dispatcher.poke()
        wait_done(store, job_id, 900)
        cpu = time.clock_gettime(clock) - cpu0
        server1 = server_cpu_s() if server0 is not None else None
        attempts = store.attempts(job_id)
        first = min(a["started_at"] for a in attempts)
        last = max(a["ended_at"] for a in attempts)
        loaded = list(dispatcher.dispatch_latencies)
        if profiler is not None:
            stop.set()
            dispatcher.poke()
            thread.join(timeout=30)
            import pstats

            print(f"\n{label}: where the dispatcher's thread spent its time", file=sys.stderr)
            stats = pstats.Stats(profiler, stream=sys.stderr)
            stats.sort_stats("cumulative").print_stats(40)
            stats.sort_stats("tottime").print_stats(25)
        return {
            "db": label, "workers": len(dispatcher.slots), "tasks": tasks,
            "idle_poke_med": statistics.median(idle[True]), "idle_poke_p99": pct(idle[True], .99),
            "idle_sync_med": statistics.median(idle[False]),
            "idle_sync_p99": pct(idle[False], .99),
            "tput": tasks / (last - first), "wall": last - t0,
            "load_med": statistics.median(loaded), "load_p99": pct(loaded, .99),
            "cpu_ms": 1000 * cpu / tasks,
            "server_ms": (None if server0 is None or server1 is None
                          else 1000 * (server1 - server0) / tasks),
        }
    finally:
        stop.set()
        dispatcher.poke()
        thread.join(timeout=30)
        dispatcher.close()
        store.dispose()


# ---------------------------------------------------------------------------- sync cost

SYNC_FIGURES = {
    "first": "first sync (loads the queue)",
    "steady": "nothing changed",
    "priority": "priority changed by another connection",
    "new_job": "10-task job submitted by another connection",
    "full": "forced full resync",
}
STEADY_SYNCS = 3


class StatementCounter:
    """Counts the SQL statements an engine sends."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def timed_sync(
    dispatcher: Dispatcher, counter: StatementCounter, *, full: bool = False
) -> tuple[float, int]:
    """Seconds one `sync()` took and the statements it sent."""
    before = counter.count
    t0 = time.perf_counter()
    dispatcher.sync(full=full)
    return time.perf_counter() - t0, counter.count - before


def big_job(store: Store, project_id: int, n: int) -> int:
    """The N-task job that every run on one database shares (the first run makes it)."""
    found = store.find_job(project_id, f"sync-bench-{n}")
    if found is not None:
        return found.id
    tasks = [TaskSpec(f"n{i:06d}", TaskKind.NOOP, {"sleep_s": 0.0}) for i in range(n)]
    return store.create_job(project_id=project_id, name="sync-bench", kind="noop", spec={},
                            fingerprint=f"sync-bench-{n}", tasks=tasks)


def forced_full_sync(dispatcher: Dispatcher, counter: StatementCounter) -> tuple[float, int]:
    return timed_sync(dispatcher, counter, full=True)


def sync_probe(url: str, n: int) -> dict[str, float]:
    """One run in this process: seconds per kind of sync, and statements per steady sync."""
    store = Store(url)
    other = Store(url)  # another process's connection: the API, or `wanhe project` on the CLI
    counter = StatementCounter(store)
    try:
        project = store.project_by_name("sync-bench") or store.create_project("sync-bench")
        job_id = big_job(store, project.id, n)
        dispatcher = Dispatcher(store, workers=1, log_root=Path(tempfile.mkdtemp()) / "logs")
        figures: dict[str, float] = {}
        figures["first"], figures["first_statements"] = timed_sync(dispatcher, counter)
        steady = [timed_sync(dispatcher, counter) for _ in range(STEADY_SYNCS)]
        figures["steady"] = statistics.median(seconds for seconds, _ in steady)
        figures["steady_statements"] = max(statements for _, statements in steady)
        other.set_priority(job_id, 60)
        figures["priority"], figures["priority_statements"] = timed_sync(dispatcher, counter)
        other.set_priority(job_id, 50)
        dispatcher.sync()
        small = noop_job(other, project.id, 10, "sync-small")
        figures["new_job"], figures["new_job_statements"] = timed_sync(dispatcher, counter)
        other.cancel_job(small)
        dispatcher.sync()
        figures["full"], figures["full_statements"] = forced_full_sync(dispatcher, counter)
        figures["queued"] = dispatcher.policy.ready_count(include_paused=True)
        if figures["queued"] != n:
            raise RuntimeError(f"the dispatcher queued {figures['queued']} tasks, not {n}")
        return figures
    finally:
        other.dispose()
        store.dispose()


def probe_in_subprocess(src: str, url: str, n: int) -> dict[str, float]:
    """`sync_probe` in a fresh interpreter that imports wanhe from `src`."""
    out = subprocess.run(
        [sys.executable, __file__, "--sync-probe", url, "--sync-tasks", str(n)],
        env={**os.environ, "PYTHONPATH": src}, check=True, capture_output=True, text=True,
        timeout=1800,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def sync_database_urls(tmp: str, args: argparse.Namespace,
                       stack: contextlib.ExitStack) -> list[tuple[str, Callable[[str], str], int]]:
    """(label, tree tag -> fresh database URL, tasks) for SQLite and, if available, PostgreSQL."""
    dbs: list[tuple[str, Callable[[str], str], int]] = [
        ("SQLite", lambda tag: f"sqlite:///{tmp}/sync-{tag}.db", args.sync_tasks)]
    if args.no_postgres:
        return dbs
    url = args.postgres or stack.enter_context(throwaway_postgres())
    if url is None:
        print("PostgreSQL: not installed; pass --postgres URL", file=sys.stderr)
        return dbs
    dbs.append(("PostgreSQL", lambda tag: fresh_database(url, f"sync_{tag}"), args.pg_sync_tasks))
    return dbs


def ratio_text(ratio: float) -> str:
    return f"{ratio:,.1f}×" if ratio < 10 else f"{ratio:,.0f}×"


def sync_main(args: argparse.Namespace, command: str) -> None:
    trees = {"this tree": str(Path(__file__).resolve().parents[1] / "src")}
    if args.baseline_src:
        trees = {"baseline": args.baseline_src, **trees}
    rows: list[tuple[str, int, dict[str, list[dict[str, float]]]]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        for label, make_url, n in sync_database_urls(tmp, args, stack):
            urls = {tree: make_url(f"t{i}") for i, tree in enumerate(trees)}
            runs: dict[str, list[dict[str, float]]] = {tree: [] for tree in trees}
            for run in range(args.runs):
                for tree, src in trees.items():  # alternate, so both see the same noise
                    runs[tree].append(probe_in_subprocess(src, urls[tree], n))
                    print(f"{label} run {run + 1}/{args.runs} {tree}: {runs[tree][-1]}",
                          file=sys.stderr)
            rows.append((label, n, runs))
    print(f"\n`{command}` ({os.cpu_count()} cores; median of {args.runs} runs, "
          f"each a fresh process)\n")
    print("| database | ready tasks | sync | " + " | ".join(trees) +
          (" | baseline ÷ this tree |" if len(trees) == 2 else " |"))
    print("| --- | ---: | --- | " + " | ".join("---:" for _ in trees) +
          (" | ---: |" if len(trees) == 2 else " |"))
    for label, n, runs in rows:
        for key, heading in SYNC_FIGURES.items():
            medians = [statistics.median(r[key] for r in runs[tree]) for tree in trees]
            statements = [max(r[f"{key}_statements"] for r in runs[tree]) for tree in trees]
            cells = [f"{1000 * m:.1f} ms ({s} statement{'s' if s != 1 else ''})"
                     for m, s in zip(medians, statements, strict=True)]
            ratio = f" | {ratio_text(medians[0] / medians[1])}" if len(trees) == 2 else ""
            print(f"| {label} | {n:,} | {heading} | " + " | ".join(cells) + ratio + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--postgres", default=os.environ.get("WANHE_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--local-slots", type=int, default=0,
                        help="this many in-process worker slots instead of Ray's")
    parser.add_argument("--instant", action="store_true",
                        help="with --local-slots: no-op handles that answer at once")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--sync", action="store_true", help="measure Dispatcher.sync() instead")
    parser.add_argument("--sync-tasks", type=int, default=100_000)
    parser.add_argument("--pg-sync-tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-src", help="a source tree to compare with (its src/ folder)")
    parser.add_argument("--sync-probe", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    command = "python " + " ".join(["bench/dispatch.py", *sys.argv[1:]])
    if args.sync_probe:
        print(json.dumps(sync_probe(args.sync_probe, args.sync_tasks)))
        return
    if args.sync:
        sync_main(args, command)
        return
    if not args.local_slots:
        cluster.connect(None, num_cpus=args.workers)
    extra = {"local_slots": args.local_slots, "instant": args.instant, "profile": args.profile}
    rows = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure(f"sqlite:///{tmp}/bench.db", "SQLite", args.workers,
                                args.tasks, args.probes, **extra))
    if not args.no_postgres:
        with contextlib.ExitStack() as stack:
            url = args.postgres or stack.enter_context(throwaway_postgres())
            if url is None:
                print("PostgreSQL: not installed; pass --postgres URL", file=sys.stderr)
            else:
                rows.append(measure(fresh_database(url, "pg"), "PostgreSQL", args.workers,
                                    args.tasks, args.probes, **extra))
    if not args.local_slots:
        cluster.shutdown()
    cores = os.cpu_count()
    where = (f"{args.local_slots} {'instant no-op' if args.instant else 'in-process NOOP worker'}"
             f" slots, no Ray" if args.local_slots
             else f"{args.workers} NOOP worker slots on embedded Ray")
    print(f"\n`{command}` ({cores} cores, {where}; wanhe from "
          f"{Path(__import__('wanhe').__file__).parents[1]}, load average "
          f"{os.getloadavg()[0]:.1f})\n")
    print("| database | idle → running, poked: median / p99 | idle → running, sync only: "
          "median / p99 | throughput | queue wait under load: median / p99 | "
          "dispatcher CPU per task | database server CPU per task |")
    print("| --- | --- | --- | --- | --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {1000 * r['idle_poke_med']:.0f} / {1000 * r['idle_poke_p99']:.0f}"
              f" ms | {1000 * r['idle_sync_med']:.0f} / {1000 * r['idle_sync_p99']:.0f} ms | "
              f"{r['tput']:.0f} tasks/s ({r['tasks']} tasks, {r['workers']} slots) | "
              f"{1000 * r['load_med']:.0f} / {1000 * r['load_p99']:.0f} ms | "
              f"{r['cpu_ms']:.2f} ms | "
              + ("in the dispatcher's thread" if r["server_ms"] is None
                 else f"{r['server_ms']:.2f} ms") + " |")


if __name__ == "__main__":
    main()
