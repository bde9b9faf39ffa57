"""`wanhe story retake`: ask for a new take of a line on purpose.

A take is its recipe (text, voice, settings, seed); the storyboard says which take each line
speaks (`takes: {en: 2}` on the line, 1 when absent). A retake raises that number in the file
itself — edited in place, its comments and layout kept — so the next render (here or on the
farm) synthesizes the new take and every other line keeps its own.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from wanhe.imaging.atomic import atomic_write
from wanhe.story.load import StoryError, load_storyboard
from wanhe.story.schema import line_id


def _find(root: yaml.Node, path: list[str | int]) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


def _insert_entry(text: str, mapping: yaml.MappingNode, key: str, value: str) -> str:
    """`key: value` added to a mapping node of the YAML `text`, in its own style."""
    if mapping.flow_style:
        at = int(mapping.end_mark.index) - 1  # the closing brace
        while at > mapping.start_mark.index and text[at] != "}":
            at -= 1
        sep = ", " if mapping.value else ""
        return text[:at] + f"{sep}{key}: {value}" + text[at:]
    last = mapping.value[-1][1]
    column = int(mapping.value[0][0].start_mark.column)
    end = int(last.end_mark.index)
    start = text.rfind("\n", 0, end) + 1
    if not text[start:end].strip():  # a nested block ends where the next line's text starts
        return text[:start] + " " * column + f"{key}: {value}\n" + text[start:]
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    return text[:line_end] + "\n" + " " * column + f"{key}: {value}" + text[line_end:]


def retake(storyboard: Path, line: str, lang: str | None = None) -> tuple[str, int]:
    """Raise the take of `line` ("s3.1") in `lang` (default: the original) in the storyboard
    file; (language, new take). StoryError names a line or language that is not there."""
    board = load_storyboard(storyboard)
    lang = lang or board.film.original
    if lang not in board.film.languages:
        raise StoryError(f"language {lang!r} is not in film.languages "
                         f"({', '.join(board.film.languages)})")
    where: list[str | int] | None = None
    current = 1
    for s, scene in enumerate(board.scenes):
        for h, shot in enumerate(scene.shots):
            for n, spoken in enumerate(shot.lines):
                if line_id(shot, n) == line:
                    where = ["scenes", s, "shots", h, "lines", n]
                    current = spoken.take(lang)
    if where is None:
        known = [line_id(shot, n) for shot in board.shots for n in range(len(shot.lines))]
        raise StoryError(f"no line {line!r} in {storyboard.name} — lines are named shot.N "
                         f"(here: {', '.join(known[:12])}{' …' if len(known) > 12 else ''})")
    text = storyboard.read_text(encoding="utf-8")
    root = yaml.compose(text)
    node = _find(root, where)
    assert isinstance(node, yaml.MappingNode)  # the file loaded: the line is a mapping
    new = current + 1
    takes = _find(node, ["takes"])
    existing = _find(takes, [lang]) if isinstance(takes, yaml.MappingNode) else None
    if isinstance(existing, yaml.ScalarNode):
        edited = (text[:existing.start_mark.index] + str(new)
                  + text[existing.end_mark.index:])
    elif isinstance(takes, yaml.MappingNode):
        edited = _insert_entry(text, takes, lang, str(new))
    else:
        edited = _insert_entry(text, node, "takes", f"{{{lang}: {new}}}")
    with atomic_write(storyboard.with_name(f".{storyboard.name}.retake")) as tmp:
        tmp.write_text(edited, encoding="utf-8")
        shot_id, index = line.rsplit(".", 1)
        try:  # the edit must mean what it says, or nothing is written
            check = load_storyboard(tmp)
            got = next(s for s in check.shots if s.id == shot_id).lines[int(index) - 1].take(
                lang)
        except StoryError:
            got = None
        if got != new:
            raise StoryError(f"could not edit {storyboard.name} for the retake — add "
                             f"`takes: {{{lang}: {new}}}` to line {line} by hand")
    storyboard.with_name(f".{storyboard.name}.retake").replace(storyboard)
    return lang, new
