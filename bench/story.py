"""Story reels: how fast voices are made, what a re-run reuses, how long a 1-minute reel takes.

1. speech: seconds of speech synthesized per CPU-second, Piper (the bundled en_US voice, model
   loaded once, as a warm worker holds it) and espeak-ng (en and Mandarin), the same sentences
   side by side, alternating engines, medians over rounds;
2. cache: the example storyboard rendered, one line changed, rendered again: how many voice
   and dub tasks the re-run took from the cache, and both runs' wall times;
3. minute: a generated storyboard of about one minute (12 shots, 24 lines, English + Mandarin,
   one lip-synced Blender shot) from nothing to reel.mp4 on this machine's cores.

    .venv/bin/python bench/story.py                  # all three, prints a Markdown section
    .venv/bin/python bench/story.py --part speech
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

SENTENCES = [
    "The lanterns are lit along the river tonight.",
    "Then we go before the market closes.",
    "Is the boat ready, or do we wait for the tide?",
    "Nobody has crossed the bridge since the storm.",
]
MANDARIN = ["灯笼沿着河边亮了。", "那我们在市场关门前走。", "船准备好了吗？还是等潮水？",
            "暴风雨以后没有人过桥。"]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def speech(rounds: int) -> dict[str, Any]:
    from wanhe.story.schema import Voice
    from wanhe.voice.tts import PiperVoices, bundled_model, synthesize

    voices = PiperVoices()
    t0, c0 = time.monotonic(), _cpu()
    voices.seeded(bundled_model(), 1)
    load = {"wall_s": time.monotonic() - t0, "cpu_s": _cpu() - c0}
    engines = {
        "piper en (bundled joe)": (Voice(), "en", SENTENCES),
        "espeak-ng en": (Voice(engine="espeak", voice="en"), "en", SENTENCES),
        "espeak-ng cmn": (Voice(engine="espeak", voice="cmn"), "cmn", MANDARIN),
    }
    ratios: dict[str, list[float]] = {name: [] for name in engines}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, (voice, lang, texts) in engines.items():
                model = bundled_model() if voice.engine == "piper" else None
                c0 = _cpu()
                seconds = 0.0
                for n, text in enumerate(texts):
                    made = synthesize(text, voice, lang, model, Path(tmp) / f"{r}{n}.wav",
                                      voices)
                    seconds += made.seconds
                ratios[name].append(seconds / max(1e-6, _cpu() - c0))
    return {"load": load, "median": {k: statistics.median(v) for k, v in ratios.items()},
            "all": ratios}


def _render(story: Path, out: Path, home: Path) -> tuple[Any, float]:
    from wanhe.config import Settings
    from wanhe.runs.story import render_story

    t0 = time.monotonic()
    outcome = render_story(story, out, settings=Settings(home=home))
    assert outcome.job.state.value == "done", outcome.job.message
    return outcome, time.monotonic() - t0


def cache() -> dict[str, Any]:
    import yaml
    from make_story import build

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        story = build(root / "src", size=(160, 90), fps=12, samples=1)
        _, first_s = _render(story, root / "out1", root / "home")
        board = yaml.safe_load(story.read_text())
        board["scenes"][1]["shots"][0]["lines"][0]["text"] = "Is the little boat ready?"
        story.write_text(yaml.safe_dump(board, allow_unicode=True, sort_keys=False))
        second, second_s = _render(story, root / "out2", root / "home")
        kinds = ("voice", "dub")
        ran = {a["key"] for a in second.attempts if a.get("outcome") == "ok"}
        hits = {k: sum(1 for t in second.tasks if t.kind == k and t.key in ran
                       and t.output.get("cached")) for k in kinds}
        totals = {k: sum(1 for t in second.tasks if t.kind == k) for k in kinds}
        return {"first_s": first_s, "second_s": second_s, "hits": hits, "totals": totals,
                "synthesized": second.synthesized()}


def minute_board(root: Path) -> Path:
    import yaml
    from make_story import build

    story = build(root, size=(320, 180), fps=24, samples=2)
    board = yaml.safe_load(story.read_text())
    shots = []
    for n in range(12):
        pair = [(SENTENCES[(n + k) % 4], MANDARIN[(n + k) % 4]) for k in range(2)]
        lines = [{"character": "Joe" if k == 0 else "Mei", "text": en,
                  "translations": {"cmn": cmn}} for k, (en, cmn) in enumerate(pair)]
        if n == 5:
            shots.append({"id": f"m{n:02d}", "blender": {"file": "rig.blend", "frames": "1-96",
                                                          "samples": 2},
                          "lines": [{**line, "character": "Mei"} for line in lines]})
        else:
            shots.append({"id": f"m{n:02d}", "image": {
                "path": "boards/market.png" if n % 2 else "boards/river.png",
                "camera": {"end_zoom": 1.3}}, "lines": lines})
    board["scenes"] = [{"name": "minute", "shots": shots}]
    story.write_text(yaml.safe_dump(board, allow_unicode=True, sort_keys=False))
    return story


def minute() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        story = minute_board(root / "src")
        outcome, wall = _render(story, root / "out", root / "home")
        report = json.loads((root / "out" / "report.json").read_text())
        return {"wall_s": wall, "reel_s": report["duration_s"],
                "overruns": len(report["overruns"]), "tasks": outcome.tasks_total,
                "core_hours_by_kind": report["core_hours_by_kind"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["speech", "cache", "minute", "all"], default="all")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    results: dict[str, Any] = {"load_avg": os.getloadavg(), "cores": os.cpu_count()}
    if args.part in ("speech", "all"):
        results["speech"] = speech(args.rounds)
    if args.part in ("cache", "all"):
        results["cache"] = cache()
    if args.part in ("minute", "all"):
        results["minute"] = minute()
    print(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
