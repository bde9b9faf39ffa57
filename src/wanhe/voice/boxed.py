"""One voice task's tools inside its job's sandbox (`python -m wanhe.voice.boxed`): reads a
JSON request on stdin, writes the WAV it names, prints a JSON answer on stdout. On a farm the
voice executor runs every espeak-ng, Piper and rubberband call of a farm job through this
program in that job's sandbox (`wanhe.sandbox.tool`), so a voice setting or a line of text
reaches only the job's own files.

Requests: {"kind": "voice", "text", "voice", "lang", "model", "seed", "output"} and
{"kind": "dub", "input", "time_ratio", "output"}. Answer: {"seconds", "rate"} (a voice's
also "phonemes": its timed phonemes, or null), or
{"error": "<one line>"} with exit status 3.
"""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path
from typing import Any


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from wanhe.voice.tts import wav_seconds

    out = Path(request["output"])
    if request["kind"] == "voice":
        from wanhe.story.schema import Voice
        from wanhe.voice.tts import PiperVoices, synthesize, take_phonemes

        model = Path(request["model"]) if request.get("model") else None
        voice = Voice.model_validate(request["voice"])
        made = synthesize(request["text"], voice, request["lang"], model, out, PiperVoices(),
                          int(request.get("seed", 1)))
        try:  # the mouths' timing, from libespeak-ng here in the box; else they follow loudness
            timed: dict[str, Any] | None = take_phonemes(request["text"], voice,
                                                         request["lang"], model, made.seconds)
        except (OSError, ValueError, KeyError):
            timed = None
        return {"seconds": made.seconds, "rate": made.sample_rate, "phonemes": timed}
    from wanhe.voice.stretch import time_stretch

    out.parent.mkdir(parents=True, exist_ok=True)
    time_stretch(Path(request["input"]), out, float(request["time_ratio"]))
    with wave.open(str(out), "rb") as w:
        rate = w.getframerate()
    return {"seconds": wav_seconds(out), "rate": rate}


def main() -> int:
    try:
        answer = handle(json.loads(sys.stdin.read()))
    except (ValueError, RuntimeError, OSError, KeyError, EOFError) as exc:
        print(json.dumps({"error": str(exc)[:500] or type(exc).__name__}))
        return 3
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
