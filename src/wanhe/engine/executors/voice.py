"""The voice executor: speech synthesis (`voice`) and dubbing (`dub`: a translated line fitted
to the original's slot) for story reels.

Its warm resource is the Piper voices it has loaded. Both kinds write content-named files in
the story cache: a task whose file is already there (an earlier run made it) answers at once,
`cached: true`, without synthesizing again. Metered with this process's rusage plus the
children it ran (espeak-ng, rubberband).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, self_peak_rss
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskFailed


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


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

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        voice = payload.get("voice") or {}
        return f"piper:{voice.get('model')}" if voice.get("engine") == "piper" else None

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        started, cpu0 = time.monotonic(), _cpu()
        try:
            output = self._synth(payload, ctx) if kind == "voice" else self._dub(payload, ctx)
        except (ValueError, RuntimeError, OSError) as exc:
            raise TaskFailed(f"{kind} {payload.get('line')} {payload.get('lang')}: {exc}",
                             cpu_s=_cpu() - cpu0, wall_s=time.monotonic() - started) from exc
        return TaskResult(time.monotonic() - started, _cpu() - cpu0, self_peak_rss(), output)

    def _synth(self, payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        from wanhe.story.schema import Voice
        from wanhe.voice.tts import (
            PiperVoices,
            phonemes_path,
            resolve_model,
            synthesize,
            write_take_phonemes,
        )

        out = Path(payload["output"])
        seconds = _valid_wav(out)
        voice = Voice.model_validate(payload["voice"])
        model = resolve_model(voice.model, Path("/")) if voice.engine == "piper" else None
        if seconds is not None:
            ctx.log(f"[wanhe] cached: {out.name}")
            if not phonemes_path(out).is_file():
                write_take_phonemes(payload["text"], voice, payload["lang"], model, out)
            return {"wav": str(out), "seconds": seconds, "cached": True}
        if self._voices is None:
            self._voices = PiperVoices()
        seed = int(payload.get("seed", 1))
        made = synthesize(payload["text"], voice, payload["lang"], model, out, self._voices,
                          seed)
        lead, tail = made.trimmed_s
        timed = write_take_phonemes(payload["text"], voice, payload["lang"], model, out)
        ctx.log(f"[wanhe] {voice.engine} (seed {seed}): {made.seconds:.2f} s of speech -> "
                f"{out.name} ({lead:.2f} s of silence cut before, {tail:.2f} s after)")
        return {"wav": str(out), "seconds": made.seconds, "cached": False,
                "engine": voice.engine, "chars": len(payload["text"]), "seed": seed,
                "take": int(payload.get("take", 1)), "trimmed_s": [lead, tail],
                "phonemes": len(timed["phonemes"]) if timed else 0,
                "phoneme_source": timed["source"] if timed else "loudness"}

    def _dub(self, payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
        from wanhe.story.timing import fit_line
        from wanhe.voice.stretch import time_stretch
        from wanhe.voice.tts import wav_seconds

        raw = wav_seconds(Path(payload["input"]))
        slot = wav_seconds(Path(payload["original"]))
        fit = fit_line(raw, slot, float(payload["max_stretch"]))
        out = Path(payload["output"])
        body = {"raw_s": raw, "slot_s": slot, "time_ratio": fit.time_ratio,
                "seconds": fit.duration, "overrun_s": fit.overrun_s, "flagged": fit.flagged,
                "wav": str(out)}
        if _valid_wav(out) is not None:
            return {**body, "cached": True}
        out.parent.mkdir(parents=True, exist_ok=True)
        time_stretch(Path(payload["input"]), out, fit.time_ratio)
        ctx.log(f"[wanhe] dub {payload['line']} {payload['lang']}: {raw:.2f} s into a "
                f"{slot:.2f} s slot, time ratio {fit.time_ratio:.3f}"
                + (f", overruns {fit.overrun_s:.2f} s" if fit.flagged else ""))
        return {**body, "cached": False}
