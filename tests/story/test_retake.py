"""`wanhe story retake`: a new take on purpose — the line's take number goes up in the file
(comments and layout kept), the recipe's key changes for that line and language alone."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.story.conftest import write
from wanhe.cli import app
from wanhe.story.load import load_storyboard
from wanhe.story.plan import Layout, compile_story
from wanhe.story.retake import retake

STORY = """\
# a comment the retake keeps
film: {title: T, fps: 12, width: 64, height: 48, languages: [en, cmn]}
characters:
  - name: Joe
    voice: {engine: espeak, voice: en}
scenes:
  - name: a
    shots:
      - id: s1
        image: {path: board.png}
        lines:
          - character: Joe
            text: Hi.   # the first line
            translations: {cmn: 你好。}
          - {character: Joe, text: Bye., translations: {cmn: 再见。}}
          - character: Joe
            text: Go.
            translations:
              cmn: 走。
      - id: s2
        image: {path: board.png}
"""


def _keys(story: Path) -> dict[str, str]:
    board = load_storyboard(story)
    facts = {"models": {}, "files": {}, "scenes": {}, "ai": {}, "gpus": 0}
    tasks = compile_story(board, story.parent, facts, Layout(story.parent / "o",
                                                             story.parent / "w",
                                                             story.parent / "c"))
    return {t.key: t.payload["cache_key"] for t in tasks if t.kind == "voice"}


def test_retake_raises_one_take_and_keeps_the_file(tmp_path: Path) -> None:
    story = write(tmp_path, {"film": {}})  # the board image
    story.write_text(STORY, encoding="utf-8")
    before = _keys(story)
    assert retake(story, "s1.1") == ("en", 2)
    assert retake(story, "s1.1") == ("en", 3)
    assert retake(story, "s1.2", "cmn") == ("cmn", 2)
    assert retake(story, "s1.3") == ("en", 2)  # after a nested block
    assert retake(story, "s1.3", "cmn") == ("cmn", 2)
    text = story.read_text(encoding="utf-8")
    assert text.startswith("# a comment the retake keeps") and "# the first line" in text
    lines = load_storyboard(story).shots[0].lines
    assert (lines[0].take("en"), lines[0].take("cmn"), lines[1].take("cmn")) == (3, 1, 2)
    after = _keys(story)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"voice/s1.1/en", "voice/s1.2/cmn", "voice/s1.3/en", "voice/s1.3/cmn"}


def test_retake_on_the_command_line(tmp_path: Path) -> None:
    story = write(tmp_path, {"film": {}})
    story.write_text(STORY, encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["story", "retake", str(story), "s1.2"])
    assert done.exit_code == 0, done.output
    assert "line s1.2 (en) now speaks take 2" in done.output
    bad = runner.invoke(app, ["story", "retake", str(story), "s9.1"])
    assert bad.exit_code == 2 and "no line 's9.1'" in bad.output
    assert "Traceback" not in bad.output
