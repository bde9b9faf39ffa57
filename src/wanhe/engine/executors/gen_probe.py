"""The generation probe as a farm task (`gen_probe`): `POST /api/estimate` of a gen spec
whose model has no history sends it here, so that no diffusion model is ever loaded in the
API process.

The task's payload is the shot's first gen payload (`gen`), the step counts to probe
(`steps`), and whether to time the worker's start too (`start`). The worker loads its own
copy of the model (the probe must time a cold load, so the executor's warm copy is not
used) and drops it when done; the result is the probe (`wanhe.ai.probe`), as the task's
output. The attempt is metered and billed as any task: a probe is farm work.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, noted, self_peak_rss
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskCancelled, TaskFailed
from wanhe.metering import METER


@register_executor
class GenProbeExecutor(Executor):
    kinds = frozenset({"gen_probe"})

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        from wanhe.ai import pipelines
        from wanhe.ai.probe import Prober, ProbeStopped, probe_worker_start

        try:
            gen = dict(payload["gen"])
            few, more = (int(n) for n in payload["steps"])
            threads = int(payload.get("threads") or os.cpu_count() or 1)
        except (KeyError, TypeError, ValueError) as exc:
            raise TaskFailed(f"a gen_probe task needs gen, steps and threads ({exc})") from None
        device = "gpu" if gen.get("device") == "gpu" and self.worker.gpu_ids else "cpu"
        started = time.monotonic()
        with METER.task() as share:

            def spent() -> dict[str, Any]:  # what a probe that ends early used: billed too
                return {"wall_s": time.monotonic() - started, "cpu_s": METER.read(share),
                        "peak_rss": self_peak_rss()}

            if device == "cpu":
                import torch

                torch.set_num_threads(threads)
            pipelines.offline()
            prober = Prober(device, threads, stop=ctx.cancelled.is_set)
            try:
                probe = prober.probe(gen, (few, more))
                if ctx.cancelled.is_set():
                    raise ProbeStopped()
                start_s = probe_worker_start(device) if payload.get("start") else None
            except ProbeStopped:
                raise TaskCancelled("cancelled", **spent()) from None
            except pipelines.ModelLoadError as exc:
                raise TaskFailed(str(exc), **spent()) from None
            except Exception as exc:  # what a gen task would fail with: one line
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise TaskFailed(f"the probe failed ({type(exc).__name__}: {first[:300]})",
                                 **spent()) from None
            finally:
                prober.close()
        output: dict[str, Any] = {"probe": asdict(probe), "start_s": start_s,
                                  "device": device}
        noted(share, output)
        return TaskResult(time.monotonic() - started, share.cpu_s, self_peak_rss(), output)
