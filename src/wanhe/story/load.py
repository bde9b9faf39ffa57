"""Reading a storyboard file: YAML → `Storyboard`, every mistake one line with where it is.

A YAML syntax error names its line and column; a value the schema refuses names its field
path and the line and column of that value in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from wanhe.story.schema import Storyboard

MAX_FILE_BYTES = 4 << 20


class StoryError(ValueError):
    """A storyboard that cannot be made into a reel; the message says where and what to do."""


def _node_at(root: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = None
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = value
                    break
            if found is None:
                return node
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return node
            node = node.value[part]
        else:
            return node
    return node


def _where(root: yaml.Node | None, loc: tuple[Any, ...], name: str) -> str:
    node = _node_at(root, loc)
    if node is None:
        return name
    mark = node.start_mark
    return f"{name}:{mark.line + 1}:{mark.column + 1}"


_SHOT_LINE = re.compile(r"^shot '([^']+)'(?: line (\d+))?")


def _shot_loc(data: Any, msg: str) -> tuple[Any, ...]:
    """Where a whole-storyboard check's message points: `shot 'X' line N` → its path."""
    found = _SHOT_LINE.match(msg)
    if not found or not isinstance(data, dict):
        return ()
    for i, scene in enumerate(data.get("scenes") or []):
        for j, shot in enumerate((scene or {}).get("shots") or []):
            if isinstance(shot, dict) and shot.get("id") == found.group(1):
                loc: tuple[Any, ...] = ("scenes", i, "shots", j)
                if found.group(2):
                    loc += ("lines", int(found.group(2)) - 1)
                return loc
    return ()


def describe_validation(exc: ValidationError, root: yaml.Node | None, name: str,
                        data: Any = None) -> str:
    first = exc.errors()[0]
    loc = tuple(p for p in first.get("loc", ()) if not isinstance(p, str) or p[:1] != "_")
    msg = str(first.get("msg", exc)).removeprefix("Value error, ")
    if not loc:
        where = _shot_loc(data, msg)
        if where:
            return f"{_where(root, where, name)}: {msg}"
    path = ".".join(str(p) for p in loc)
    field = f" {path}:" if path else ""
    return f"{_where(root, loc, name)}:{field} {msg}"


def parse_storyboard(text: str, name: str = "story.yaml") -> Storyboard:
    """The storyboard in `text`; raises StoryError (with file:line:column) when it is not one."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
        raise StoryError(f"{where}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise StoryError(f"{name}: malformed YAML: {exc}") from None
    if not isinstance(data, dict):
        raise StoryError(f"{name}: a storyboard is a mapping with film, characters and scenes")
    try:
        return Storyboard.model_validate(data)
    except ValidationError as exc:
        raise StoryError(describe_validation(exc, root, name, data)) from None


def load_storyboard(path: Path) -> Storyboard:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise StoryError(f"cannot read the storyboard {path}: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise StoryError(f"{path}: {size:,} bytes is too big for a storyboard (at most "
                         f"{MAX_FILE_BYTES:,})")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoryError(f"cannot read the storyboard {path}: {exc}") from None
    return parse_storyboard(text, path.name)
