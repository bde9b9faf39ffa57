"""The store's batch calls alone: 3,000 tasks started (`Store.start_attempts`) and finished
(`Store.finish_attempts`) in batches of N, microseconds per task, median over the batches.

    PYTHONPATH=<tree>/src .venv/bin/python bench/store_batches.py sqlite:////tmp/b.db 100

Run it with PYTHONPATH pointing at another tree's src to compare (a fresh database each).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from wanhe.model import TaskKind, TaskSpec
from wanhe.store.store import AttemptFinish, AttemptStart, Store, Usage


def main() -> None:
    url, size = sys.argv[1], int(sys.argv[2])
    store = Store(url)
    project = store.ensure_project(f"batches-{os.getpid()}")
    job = store.create_job(project_id=project.id, name="batches", kind="noop", spec={},
                           fingerprint=f"batches-{os.getpid()}",
                           tasks=[TaskSpec(f"t{i}", TaskKind.NOOP, {}) for i in range(3000)])
    ids = [task.id for task in store.tasks(job)]
    starts, finishes = [], []
    for first in range(0, len(ids), size):
        batch = ids[first:first + size]
        t0 = time.perf_counter()
        made = store.start_attempts([AttemptStart(i, "n", "w", 1.0, "/l") for i in batch])
        t1 = time.perf_counter()
        store.finish_attempts([AttemptFinish(made[i], i, Usage(1.0, 1.0), {}) for i in batch])
        t2 = time.perf_counter()
        starts.append((t1 - t0) / len(batch))
        finishes.append((t2 - t1) / len(batch))
    store.dispose()
    print(f"batches of {size}: start {statistics.median(starts) * 1e6:.0f} µs/task, "
          f"finish {statistics.median(finishes) * 1e6:.0f} µs/task")


if __name__ == "__main__":
    main()
