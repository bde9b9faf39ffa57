"""The voice executor: speech synthesis (`voice`) and dubbing (`dub`: a translated line fitted
to the original's slot) for story reels.

Its warm resource is the Piper voices it has loaded. Both kinds write content-named files in
the story cache: a task whose file is already there (an earlier run made it) answers at once,
`cached: true`, without synthesizing again. Metered with this process's meter
(`wanhe.metering`): its share of the process's CPU plus the children it ran (espeak-ng,
rubberband), exactly.

On a farm with the sandbox on, a farm job's voice tools run in that job's sandbox like every
other task (`wanhe.sandbox.tool`: the project's OS user, a mount namespace showing the job's
folders, a cgroup): each task is one `python -m wanhe.voice.boxed` there, writing into the
job's `work/`; this process checks the WAV and puts it into the story cache. Piper then loads
its voice per task (about half a second) instead of keeping it warm.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import (
    Executor,
    TaskContext,
    TaskResult,
    noted,
    self_peak_rss,
)
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskFailed
from wanhe.metering import METER, Share
from wanhe.payloads import PayloadError
from wanhe.voice.payloads import DubTask, VoiceTask


def _write_phonemes(take: Path, timed: dict[str, Any]) -> None:
    import json

    from wanhe.imaging.atomic import atomic_write
    from wanhe.voice.tts import phonemes_path

    with atomic_write(phonemes_path(take)) as tmp:
        tmp.write_text(json.dumps(timed), encoding="utf-8")


def _valid_wav(path: Path) -> float | None:
    from wanhe.voice.tts import wav_seconds

    try:
        return wav_seconds(path) if path.is_file() else None
    except (OSError, EOFError, ValueError):
        return None


@register_executor
class VoiceExecutor(Executor):
    kinds = frozenset({"voice", "dub"})
    _voices: Any = None
    _used: tuple[float | None, int | None] = (None, None)  # a sandboxed run's CPU and peak
    _boxed_phonemes: dict[str, Any] | None = None  # a sandboxed take's phoneme timings

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        voice = payload.get("voice") or {}
        return f"piper:{voice.get('model')}" if voice.get("engine") == "piper" else None

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        from wanhe.sandbox.tool import sandboxed

        try:  # the typed payload, checked before anything runs and read from then on
            task = (VoiceTask if kind == "voice" else DubTask).read(payload)
        except PayloadError as exc:
            raise TaskFailed(str(exc)) from None
        started = time.monotonic()
        self._used = (None, None)
        self._boxed_phonemes = None
        boxed = sandboxed(task.job_root, ctx.project)
        with METER.task() as share:  # a local run's other workers share this process
            try:
                if isinstance(task, VoiceTask):
                    output = self._synth(task, ctx, boxed)
                else:
                    output = self._dub(task, ctx, boxed)
            except (ValueError, RuntimeError, OSError) as exc:
                failed: Exception | None = exc
            else:
                failed = None
        if failed is not None:
            raise TaskFailed(f"{kind} {task.line} {task.lang}: {failed}",
                             cpu_s=self._spent(share),
                             wall_s=time.monotonic() - started) from failed
        peak = self._used[1]
        return TaskResult(time.monotonic() - started, self._spent(share),
                          peak or self_peak_rss(), noted(share, output))

    def _spent(self, share: Share) -> float:
        """The task's CPU: its share of this process, the children it waited for (espeak-ng,
        rubberband: exact), and a sandboxed run's cgroup figure, which counts every process
        of the sandbox (its reaped child is in the children's share too: left out then)."""
        cpu, _peak = self._used
        if cpu is None:
            return share.cpu_s
        return share.own_s + share.exact_s + cpu

    def _in_sandbox(self, request: dict[str, Any], job_root: str, ctx: TaskContext,
                    inputs: tuple[Path, ...]) -> float:
        """Run `request` (see wanhe.voice.boxed) in the job's sandbox, writing into the job's
        `work/`; the checked WAV is then moved to `request["output"]` (the story cache).
        Returns its length in seconds."""
        import json
        import os
        import shutil
        import stat
        import tempfile

        from wanhe.sandbox.tool import python_argv, run_in_job

        root = Path(job_root)
        out = Path(request["output"])
        scratch = Path(tempfile.mkdtemp(prefix="voice-", dir=root / "work"))
        # Held open: the project's user may rename folders in work/, never this one's inode.
        folder = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            from wanhe.sandbox import accounts

            account = accounts.session_account(ctx.project, ctx.project_id)
            if account.isolated:
                os.chown(scratch, account.uid, account.gid)
            done = run_in_job(python_argv("wanhe.voice.boxed"), root, ctx.project,
                              ctx.project_id, name=f"voice-{self.worker.name}",
                              stdin=json.dumps({**request, "output": str(scratch / "out.wav")}),
                              timeout_s=600, memory_bytes=ctx.memory_bytes or None,
                              inputs=inputs, what=f"the voice tools of {ctx.key or 'a line'}")
            self._used = (done.cpu_s, done.peak_memory)
            try:
                answer = json.loads(done.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                answer = {"error": done.stderr.strip()[-300:] or f"exit {done.returncode}"}
            if done.returncode != 0 or "error" in answer:
                raise RuntimeError(str(answer.get("error", f"exit {done.returncode}")))
            self._boxed_phonemes = answer.get("phonemes")
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(f".{out.stem}.{os.getpid()}.part.wav")
            try:  # the cache's copy is the farm's: never a link the tool left to elsewhere
                made = os.open("out.wav", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
                               dir_fd=folder)
            except OSError:
                raise RuntimeError("the voice tools wrote no WAV") from None
            if not stat.S_ISREG(os.fstat(made).st_mode):  # a FIFO or device: not a WAV
                os.close(made)
                raise RuntimeError("the voice tools wrote no WAV")
            with os.fdopen(made, "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
            seconds = _valid_wav(partial)
            if seconds is None:
                partial.unlink(missing_ok=True)
                raise RuntimeError("the voice tools wrote no readable WAV")
            os.replace(partial, out)
            return seconds
        finally:
            os.close(folder)
            shutil.rmtree(scratch, ignore_errors=True)

    def _synth(self, task: VoiceTask, ctx: TaskContext, boxed: bool) -> dict[str, Any]:
        from wanhe.story.schema import Voice
        from wanhe.voice.tts import (
            PiperVoices,
            phonemes_path,
            resolve_model,
            synthesize,
            write_take_phonemes,
        )

        out = Path(task.output)
        seconds = _valid_wav(out)
        voice = Voice.model_validate(task.voice)
        model = resolve_model(voice.model, Path("/")) if voice.engine == "piper" else None
        if seconds is not None:
            ctx.log(f"[wanhe] cached: {out.name}")
            if not phonemes_path(out).is_file() and not boxed:
                write_take_phonemes(task.text, voice, task.lang, model, out)
            return {"wav": str(out), "seconds": seconds, "cached": True}
        if boxed and task.job_root:
            from wanhe.storage import within_job
            from wanhe.story.schema import BUNDLED_VOICE

            model_path: Path | None = None
            if voice.engine == "piper" and voice.model != BUNDLED_VOICE:
                # the farm's own voice ships with its software; any other is the job's file
                model_path = within_job(resolve_model(voice.model, Path("/")),
                                        task.job_root)
            elif voice.engine == "piper":
                model_path = resolve_model(voice.model, Path("/"))
            seed = task.seed
            seconds = self._in_sandbox(
                {"kind": "voice", "text": task.text, "voice": task.voice,
                 "lang": task.lang, "model": str(model_path) if model_path else None,
                 "seed": seed, "output": str(out)}, task.job_root, ctx, ())
            timed = self._boxed_phonemes
            if timed is not None:  # worked out in the box (libespeak-ng reads the line there)
                _write_phonemes(out, timed)
            ctx.log(f"[wanhe] {voice.engine} (sandboxed, seed {seed}): {seconds:.2f} s of "
                    f"speech -> {out.name}")
            return {"wav": str(out), "seconds": seconds, "cached": False,
                    "engine": voice.engine, "chars": len(task.text), "seed": seed,
                    "take": task.take,
                    "phonemes": len(timed["phonemes"]) if timed else 0,
                    "phoneme_source": timed["source"] if timed else "loudness"}
        if self._voices is None:
            self._voices = PiperVoices()
        seed = task.seed
        made = synthesize(task.text, voice, task.lang, model, out, self._voices,
                          seed)
        lead, tail = made.trimmed_s
        timed = write_take_phonemes(task.text, voice, task.lang, model, out)
        ctx.log(f"[wanhe] {voice.engine} (seed {seed}): {made.seconds:.2f} s of speech -> "
                f"{out.name} ({lead:.2f} s of silence cut before, {tail:.2f} s after)")
        return {"wav": str(out), "seconds": made.seconds, "cached": False,
                "engine": voice.engine, "chars": len(task.text), "seed": seed,
                "take": task.take, "trimmed_s": [lead, tail],
                "phonemes": len(timed["phonemes"]) if timed else 0,
                "phoneme_source": timed["source"] if timed else "loudness"}

    def _dub(self, task: DubTask, ctx: TaskContext, boxed: bool) -> dict[str, Any]:
        from wanhe.story.timing import fit_line
        from wanhe.voice.stretch import time_stretch
        from wanhe.voice.tts import wav_seconds

        raw = wav_seconds(Path(task.input))
        slot = wav_seconds(Path(task.original))
        fit = fit_line(raw, slot, task.max_stretch)
        out = Path(task.output)
        body = {"raw_s": raw, "slot_s": slot, "time_ratio": fit.time_ratio,
                "seconds": fit.duration, "overrun_s": fit.overrun_s, "flagged": fit.flagged,
                "wav": str(out)}
        if _valid_wav(out) is not None:
            return {**body, "cached": True}
        if boxed and task.job_root:  # the take (story cache): read-only to the tool
            source = Path(task.input).resolve()
            self._in_sandbox({"kind": "dub", "input": str(source), "time_ratio": fit.time_ratio,
                              "output": str(out)}, task.job_root, ctx, (source,))
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            time_stretch(Path(task.input), out, fit.time_ratio)
        ctx.log(f"[wanhe] dub {task.line} {task.lang}: {raw:.2f} s into a "
                f"{slot:.2f} s slot, time ratio {fit.time_ratio:.3f}"
                + (f", overruns {fit.overrun_s:.2f} s" if fit.flagged else ""))
        return {**body, "cached": False}
