"""Mouth shapes from phonemes (pure): the Preston Blair chart as Rhubarb Lip Sync names it.

    A  closed (M, B, P)                 E  slightly rounded (AO, ER: "off", "bird")
    B  slightly open, teeth (K, S, T, EE) F  puckered (UW, OW, W)
    C  open (EH, AE: "men", "bat")       G  teeth on lip (F, V)
    D  wide open (AA: "father")          H  tongue up (long L)
    X  rest (silence)

Each frame shows the phoneme heard a `lead` of frames later (animators key the mouth a frame
or two before the sound); a closure (m, b, p) always gets its frame even when shorter than
one; silence and held frames are at rest (X).
"""

from __future__ import annotations

from collections.abc import Sequence

from wanhe.voice.espeak_events import Phoneme

SHAPES = "ABCDEFGHX"
REST = "X"
LEAD_FRAMES = 1
# (open, wide) a two-key rig (MouthOpen, MouthWide) shows for each shape
OPEN_WIDE: dict[str, tuple[float, float]] = {
    "A": (0.0, 0.0), "B": (0.2, 0.6), "C": (0.55, 0.55), "D": (1.0, 0.35), "E": (0.6, 0.1),
    "F": (0.3, 0.0), "G": (0.15, 0.4), "H": (0.45, 0.3), "X": (0.0, 0.0),
}
_CLOSED = set("mbpɱ")
_TEETH_LIP = set("fvʋ")
_PUCKER = set("uʊwɥyʏøɵ")
_ROUND = set("oɔɒɜɝɚœ")
_WIDE_OPEN = set("aɑɐ")
_OPEN = set("eɛæʌəɘɤ")
_TONGUE = set("lɫɭʎ")
_MARKS = set("ˈˌːˑ'_-.0123456789 \u0303\u032a\u02b2")


def shape_of(ipa: str) -> str:
    """The Rubarb shape of one phoneme (espeak-ng's IPA, e.g. 'əʊ', 'iː', 'tʃ', 'onɡ'): its
    first sound decides (a diphthong starts where its first vowel is)."""
    sounds = [c for c in ipa if c not in _MARKS]
    if not sounds:
        return REST
    first = sounds[0]
    if first in _CLOSED:
        return "A"
    if first in _TEETH_LIP:
        return "G"
    if first in _PUCKER:
        return "F"
    if first in _ROUND:
        return "E"
    if first in _WIDE_OPEN:
        return "D"
    if first in _OPEN:
        return "C"
    if first in _TONGUE:
        return "H"
    return "B"  # other consonants, and i/ɪ/j (EE)


def viseme_frames(lines: Sequence[tuple[float, Sequence[Phoneme]]], fps: float, frames: int,
                  lead: int = LEAD_FRAMES, held_from: int | None = None) -> list[str]:
    """A shape per frame for one character: `lines` are (start seconds in the shot, the
    line's phonemes timed from the line's start). Frame n shows what is heard over the frame
    at n + `lead`: the phoneme that covers most of it; closures get their frame; frames from
    `held_from` on (a shot held on its last rendered frame) are at rest."""
    shapes = [REST] * frames
    cover = [0.0] * frames
    placed: list[tuple[float, float, str]] = []
    for start, phonemes in lines:
        placed += [(start + p.start, start + p.end, shape_of(p.ipa)) for p in phonemes]
    for a, b, shape in placed:
        if shape == REST:
            continue
        first = max(0, int(a * fps) - lead)
        last = min(frames - 1, int(b * fps) - lead)
        for n in range(first, last + 1):
            lo, hi = (n + lead) / fps, (n + lead + 1) / fps
            overlap = min(b, hi) - max(a, lo)
            if overlap > cover[n]:
                shapes[n], cover[n] = shape, overlap
    for a, b, shape in placed:  # a closure shorter than a frame keeps its frame
        if shape == "A":
            n = round((a + b) / 2 * fps - 0.5) - lead
            if 0 <= n < frames and shapes[n] != "A" and (b - a) * fps >= 0.25:
                shapes[n] = "A"
    if held_from is not None:
        for n in range(max(0, held_from), frames):
            shapes[n] = REST
    return shapes


def held_rest_from(rendered: int, shot_frames: int) -> int | None:
    """The first frame to keep at rest when a shot of `shot_frames` is longer than the
    `rendered` frames it holds the last of: that last frame, since it is what stays on
    screen while the line goes on — no mouth frozen open."""
    return rendered - 1 if shot_frames > rendered else None
