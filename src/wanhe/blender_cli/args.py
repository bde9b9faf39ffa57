"""Blender's command line, the background-rendering part: parsed into ordered actions.

Pure: no `bpy`. Blender processes its arguments left to right, so `-o` before `-b FILE` sets
the output of the startup scene (which loading the file then replaces) and `-f 1` before
`-o` renders to the file's own output path. The parser keeps that order; the runner
(`wanhe.blender_cli.runner`) applies each action in turn.

Frame numbers follow Blender's rules: `-f 1,3,5..7` (a list, `..` ranges), `+N` counts from
the scene's start frame and `-N` back from its end frame (`-s`, `-e` and `-f` alike), and
every frame is clamped to Blender's limits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Blender's MINAFRAME / MAXFRAME.
MIN_FRAME = -1_048_574
MAX_FRAME = 1_048_574

# `-F` values Blender takes, to the 5.0 `image_settings.file_format` identifiers.
FORMATS: dict[str, str] = {
    "TGA": "TARGA",
    "RAWTGA": "TARGA_RAW",
    "JPEG": "JPEG",
    "IRIS": "IRIS",
    "PNG": "PNG",
    "BMP": "BMP",
    "HDR": "HDR",
    "TIFF": "TIFF",
    "OPEN_EXR": "OPEN_EXR",
    "OPEN_EXR_MULTILAYER": "OPEN_EXR_MULTILAYER",
    "FFMPEG": "FFMPEG",
    "CINEON": "CINEON",
    "DPX": "DPX",
    "JP2": "JPEG2000",
    "WEBP": "WEBP",
}

PYTHON_ENV = "WANHE_ALLOW_BLENDER_PYTHON"


class CliError(ValueError):
    """An argument Blender would not accept (or wanhe's `blender` refuses), with the fix."""


@dataclass(frozen=True, slots=True)
class Action:
    """One argument, in the order given: `op` names what to do, `value` its argument."""

    op: str
    value: str = ""
    flag: str = ""  # as the user typed it, for messages


@dataclass(slots=True)
class Parsed:
    actions: list[Action] = field(default_factory=list)
    script_args: list[str] = field(default_factory=list)  # after `--`
    python_exit_code: int = 0
    warnings: list[str] = field(default_factory=list)
    show_help: bool = False
    show_version: bool = False

    @property
    def runs_python(self) -> list[Action]:
        return [a for a in self.actions if a.op in _PYTHON_OPS]


# flag -> (op, takes a value)
_FLAGS: dict[str, tuple[str, bool]] = {
    "-o": ("output", True),
    "--render-output": ("output", True),
    "-F": ("format", True),
    "--render-format": ("format", True),
    "-x": ("extension", True),
    "--use-extension": ("extension", True),
    "-f": ("frames", True),
    "--render-frame": ("frames", True),
    "-s": ("start", True),
    "--frame-start": ("start", True),
    "-e": ("end", True),
    "--frame-end": ("end", True),
    "-j": ("step", True),
    "--frame-jump": ("step", True),
    "-a": ("anim", False),
    "--render-anim": ("anim", False),
    "-E": ("engine", True),
    "--engine": ("engine", True),
    "-t": ("threads", True),
    "--threads": ("threads", True),
    "-S": ("scene", True),
    "--scene": ("scene", True),
    "-P": ("python", True),
    "--python": ("python", True),
    "--python-expr": ("python_expr", True),
    "--python-text": ("python_text", True),
}
_PYTHON_OPS = frozenset({"python", "python_expr", "python_text"})
# Flags that change nothing here: this command is always in the background, factory settings,
# no audio, auto-run scripts off.
_NO_OPS = frozenset({
    "-b", "--background", "--factory-startup", "-noaudio", "--noaudio", "-Y",
    "--disable-autoexec", "--disable-crash-handler", "--disable-abort-handler",
    "--python-use-system-env", "--no-window-focus", "-noglsl", "--quiet", "-q", "-d", "--debug",
})
_NO_OPS_WITH_VALUE = frozenset({"--log-level", "--log", "--env-system-scripts"})
_AUTOEXEC = frozenset({"-y", "--enable-autoexec"})


def parse_args(argv: list[str]) -> Parsed:
    """Blender's arguments (without the program name) as ordered actions.

    Raises CliError for an unknown flag, a missing or malformed value.
    """
    parsed = Parsed()
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            parsed.script_args = argv[i:]
            break
        if arg in ("-h", "--help"):
            parsed.show_help = True
            continue
        if arg in ("-v", "--version"):
            parsed.show_version = True
            continue
        if arg in _NO_OPS:
            continue
        if arg in _NO_OPS_WITH_VALUE:
            i += 1
            continue
        if arg in _AUTOEXEC:
            parsed.warnings.append(
                f"{arg} ignored: scripts embedded in .blend files never run on this farm "
                "(auto-run is always off)"
            )
            continue
        if arg == "--python-exit-code":
            value = _value(argv, i, arg)
            i += 1
            code = _int(value, arg)
            if not 0 <= code <= 255:
                raise CliError(f"{arg} takes an exit code 0-255, got {value!r}")
            parsed.python_exit_code = code
            continue
        if arg in _FLAGS:
            op, takes = _FLAGS[arg]
            value = ""
            if takes:
                value = _value(argv, i, arg)
                i += 1
                _check_value(op, value, arg)
            parsed.actions.append(Action(op, value, arg))
            continue
        if arg.startswith("-") and len(arg) > 1:
            raise CliError(
                f"unknown argument {arg!r}: wanhe's blender command implements Blender's "
                "background rendering (-b FILE -o PATTERN -F FORMAT -x 0|1 -f N -s -e -j -a "
                "-E ENGINE -t N -S SCENE; --python* when the farm allows it); pass script "
                "arguments after '--'"
            )
        parsed.actions.append(Action("load", arg, arg))
    return parsed


def _value(argv: list[str], i: int, flag: str) -> str:
    if i >= len(argv):
        raise CliError(f"{flag} needs a value ({_USAGE.get(flag, 'see --help')})")
    return argv[i]


_USAGE: dict[str, str] = {
    "-o": "e.g. -o //render/frame_####", "-F": "e.g. -F OPEN_EXR_MULTILAYER",
    "-x": "-x 0 or -x 1", "-f": "e.g. -f 1, -f 1,3,5..7, -f +2", "-s": "e.g. -s 1",
    "-e": "e.g. -e 48", "-j": "e.g. -j 2", "-E": "e.g. -E CYCLES", "-t": "e.g. -t 4 (0 = all)",
}


def _int(text: str, flag: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(f"{flag} takes a whole number, got {text!r}") from None


def _check_value(op: str, value: str, flag: str) -> None:
    """Checks that need no scene, so a typo fails before Blender loads anything."""
    if op == "format" and value.upper() not in FORMATS:
        raise CliError(
            f"{flag} {value!r} is not a format Blender writes; use one of: "
            + " ".join(FORMATS)
        )
    if op == "extension" and value not in ("0", "1"):
        raise CliError(f"{flag} takes 0 or 1, got {value!r}")
    if op == "threads":
        n = _int(value, flag)
        if not 0 <= n <= 1024:
            raise CliError(f"{flag} takes 0 (all cores) to 1024, got {value!r}")
    if op == "step":
        n = _int(value, flag)
        if not 1 <= n <= MAX_FRAME:
            raise CliError(f"{flag} takes a step of at least 1, got {value!r}")
    if op in ("start", "end"):
        parse_relative(value, 1, 1, flag)  # syntax only
    if op == "frames":
        parse_frame_list(value, 1, 1, flag)
    if op in ("output", "engine", "scene") and not value:
        raise CliError(f"{flag} needs a non-empty value ({_USAGE.get(flag, '')})")


_NUMBER = re.compile(r"^[+-]?\d+$")


def parse_relative(text: str, start: int, end: int, flag: str = "-f") -> int:
    """One frame: `N`, `+N` (start + N) or `-N` (end - N), clamped to Blender's limits."""
    t = text.strip()
    if not _NUMBER.match(t):
        raise CliError(f"{flag} takes a frame number (N, +N from the start, -N from the end), "
                       f"got {text!r}")
    n = int(t)
    if t.startswith("+"):
        n = start + n
    elif t.startswith("-"):
        n = end + n  # n is negative
    return max(MIN_FRAME, min(MAX_FRAME, n))


def parse_frame_list(text: str, start: int, end: int, flag: str = "-f") -> list[int]:
    """`-f`'s frames in the order given: `1,3,5..7` → [1, 3, 5, 6, 7]; ranges may be relative
    (`+0..-0` is the scene's whole range)."""
    frames: list[int] = []
    for part in text.split(","):
        if ".." in part:
            a, _, b = part.partition("..")
            lo, hi = parse_relative(a, start, end, flag), parse_relative(b, start, end, flag)
            if hi < lo:
                raise CliError(f"{flag} range {part!r} runs backwards — write it low..high")
            if hi - lo >= 1_000_000:
                raise CliError(f"{flag} range {part!r} has more than 1,000,000 frames")
            frames.extend(range(lo, hi + 1))
        else:
            frames.append(parse_relative(part, start, end, flag))
    return frames


HELP = """\
usage: blender [-b] [FILE] [options] [-- script args]   (wanhe: Blender's bpy wheel)

Background rendering, processed left to right like Blender's own command line:
  -b, --background          run in the background (always; accepted for compatibility)
  FILE                      load this .blend (scripts embedded in it never run)
  -o, --render-output PATH  output pattern; '//' = next to the .blend, '#' = frame digits
  -F, --render-format FMT   TGA RAWTGA JPEG IRIS PNG BMP HDR TIFF OPEN_EXR
                            OPEN_EXR_MULTILAYER FFMPEG CINEON DPX JP2 WEBP
  -x, --use-extension 0|1   add the file extension to the output name
  -s, --frame-start N       -e, --frame-end N   -j, --frame-jump N   (+N / -N relative)
  -f, --render-frame LIST   render frames now: 1  |  1,3,5..7  |  +1 (start+1)  |  -1 (end-1)
  -a, --render-anim         render the scene's frame range now
  -E, --engine ENGINE       CYCLES, BLENDER_EEVEE, BLENDER_WORKBENCH
  -t, --threads N           render threads, 0 = every core
  -S, --scene NAME          the scene the following options and renders use
  -P, --python FILE, --python-expr EXPR, --python-text NAME, --python-exit-code N
                            only where the farm allows it (WANHE_ALLOW_BLENDER_PYTHON=1)
  -v, --version   -h, --help
  --                        the rest goes to scripts in sys.argv
"""
