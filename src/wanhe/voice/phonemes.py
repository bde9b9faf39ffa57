"""What espeak-ng is given to speak, and whether what it says is in the language.

Debian's espeak-ng 1.51 reads Chinese characters with its `cmn` voice as pinyin spelled out
with *English* phonemes ("灯笼亮了" → `(en)dɛ5ŋwˈɒ5n…`, "deng one, long two"). Its
`cmn-latn-pinyin` voice speaks pinyin with tone numbers correctly, so Mandarin text in Chinese
characters goes through `pypinyin` (tone numbers, the neutral tone as 5) to that voice.

The check: the phonemes espeak-ng produces (`espeak-ng -q --ipa`) must not switch to another
language (`(en)…`) and, for the languages with an inventory here, must be symbols of that
language's set (espeak-ng's own IPA for every Mandarin syllable and for Cantonese characters).
"""

from __future__ import annotations

import functools
import re
import shutil
from dataclasses import dataclass

from wanhe import metering

ESPEAK = "espeak-ng"
PINYIN_VOICE = "cmn-latn-pinyin"
MANDARIN_VOICES = frozenset({"cmn", "zh", "zh-cmn", "cmn-latn-pinyin", "sit/cmn"})
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SWITCH = re.compile(r"\(([A-Za-z-]+)\)")
# full-width punctuation espeak-ng reads as a word (or not at all) -> the pause it means
_PUNCTUATION = str.maketrans({"。": ".", "，": ",", "、": ",", "？": "?", "！": "!", "：": ":",
                              "；": ";", "（": "(", "）": ")", "“": '"', "”": '"', "…": "..."})
# Marks every language shares: stress, length, tone digits, syllable and word breaks.
_COMMON = frozenset("ˈˌː.-_'1234567 \n")
# espeak-ng 1.51's IPA for every pinyin syllable (cmn-latn-pinyin) and for Cantonese
# characters (yue): measured by running all of them through `espeak-ng -q --ipa`.
INVENTORIES: dict[str, frozenset[str]] = {
    "cmn": frozenset("aefhijklmnoprstuwyæŋɑɕəɛɜɡʐʲ̪χ"),
    "yue": frozenset("abcdefhijklmnopstuwyzŋəɜɡ"),
}


def language_of_voice(voice: str) -> str:
    """The language a voice name speaks (`cmn-latn-pinyin` → cmn, `sit/yue` → yue)."""
    base = voice.lower().split("/")[-1]
    if base in MANDARIN_VOICES or base.startswith("cmn"):
        return "cmn"
    return base.split("-")[0]


def to_pinyin(text: str) -> str:
    """Chinese characters as pinyin syllables with tone numbers (neutral tone 5), other text
    kept, full-width punctuation as its ASCII pause: "灯笼亮了。" → "deng1 long2 liang4 le5."."""
    from pypinyin import Style, lazy_pinyin

    words = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    spoken = " ".join(w.translate(_PUNCTUATION).strip() for w in words)
    return re.sub(r"\s+([.,?!:;])", r"\1", spoken).strip()


def espeak_input(text: str, voice: str) -> tuple[str, str]:
    """(voice, text) espeak-ng should be given: Mandarin in Chinese characters becomes pinyin
    spoken by `cmn-latn-pinyin`; everything else is unchanged."""
    if voice.lower() in MANDARIN_VOICES and _HAN.search(text):
        return PINYIN_VOICE, to_pinyin(text)
    return voice, text


@functools.cache
def espeak_version() -> str:
    """The installed espeak-ng's version ("1.51"), or "" when it is not installed."""
    if shutil.which(ESPEAK) is None:
        return ""
    out = metering.run([ESPEAK, "--version"], capture_output=True, text=True, timeout=30,
                       check=False).stdout
    found = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return found.group(1) if found else ""


def espeak_ipa(text: str, voice: str) -> str:
    """The phonemes espeak-ng speaks `text` with (IPA), after `espeak_input`."""
    name, spoken = espeak_input(text, voice)
    done = metering.run([ESPEAK, "-q", "--ipa", "-v", name, "--", spoken],
                        capture_output=True, text=True, timeout=60, check=False)
    return str(done.stdout).strip()


@dataclass(frozen=True, slots=True)
class Foreign:
    """Phonemes not of the language: the languages espeak-ng switched to, the stray symbols."""

    switches: tuple[str, ...]
    symbols: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.switches or self.symbols)

    def describe(self) -> str:
        parts = []
        if self.switches:
            parts.append("switches to " + ", ".join(f"({s})" for s in self.switches))
        if self.symbols:
            parts.append("phonemes " + " ".join(self.symbols) + " are not in its set")
        return "; ".join(parts)


def foreign_phonemes(ipa: str, lang: str) -> Foreign:
    """What in espeak-ng's IPA output is not `lang`: switches to another language, and (for a
    language with an inventory) symbols outside it."""
    lang = language_of_voice(lang)
    switches = sorted({s.lower() for s in _SWITCH.findall(ipa)
                       if language_of_voice(s) != lang})
    inventory = INVENTORIES.get(lang)
    symbols: list[str] = []
    if inventory is not None:
        bare = _SWITCH.sub(" ", ipa)
        symbols = sorted({c for c in bare if c not in inventory and c not in _COMMON})
    return Foreign(tuple(switches), tuple(symbols))


def check_spoken(text: str, voice: str, lang: str) -> Foreign:
    """Speak `text` with `voice` in espeak-ng's phonemes only (no audio) and say what in it is
    not `lang`."""
    return foreign_phonemes(espeak_ipa(text, voice), lang)


def _ipa_of(spoken: str, name: str) -> str:
    done = metering.run([ESPEAK, "-q", "--ipa", "-v", name, "--", spoken],
                        capture_output=True, text=True, timeout=120, check=False)
    return str(done.stdout)


def check_lines(texts: list[str], voice: str, lang: str) -> list[tuple[str, Foreign]]:
    """The texts (of one voice and language) espeak-ng would not speak in `lang`, each with
    what is foreign: one espeak-ng run for all of them, one per text only when that finds
    something (a storyboard of hundreds of lines is checked in a second)."""
    by_voice: dict[str, list[tuple[str, str]]] = {}
    for text in dict.fromkeys(texts):
        name, spoken = espeak_input(text, voice)
        by_voice.setdefault(name, []).append((text, spoken))
    bad: list[tuple[str, Foreign]] = []
    for name, pairs in by_voice.items():
        if not foreign_phonemes(_ipa_of("\n".join(s for _, s in pairs), name), lang):
            continue
        for text, spoken in pairs:
            found = foreign_phonemes(_ipa_of(spoken, name), lang)
            if found:
                bad.append((text, found))
    return bad
