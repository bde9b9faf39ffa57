"""Voices that say the words: Mandarin in Chinese characters is spoken as pinyin with tone
numbers by espeak-ng's cmn-latn-pinyin voice, and the phonemes espeak-ng produces are checked
against the language's set (real espeak-ng, real pypinyin)."""

from __future__ import annotations

import subprocess

import pytest

from wanhe.voice.phonemes import (
    PINYIN_VOICE,
    check_lines,
    check_spoken,
    espeak_input,
    foreign_phonemes,
    to_pinyin,
)


def test_chinese_characters_become_pinyin_with_tone_numbers() -> None:
    assert to_pinyin("灯笼亮了。") == "deng1 long2 liang4 le5."
    assert to_pinyin("好的，我们走吧。") == "hao3 de5, wo3 men5 zou3 ba5."
    assert espeak_input("灯笼亮了。", "cmn") == (PINYIN_VOICE, "deng1 long2 liang4 le5.")
    assert espeak_input("船好了吗？", "yue") == ("yue", "船好了吗？")  # Cantonese reads Han
    assert espeak_input("Hello.", "en") == ("en", "Hello.")


def test_english_read_pinyin_is_caught() -> None:
    """What espeak-ng 1.51's `cmn` voice does with characters: an (en) switch and English
    phonemes — the check names both."""
    raw = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "cmn", "--", "灯笼亮了。"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    found = foreign_phonemes(raw, "cmn")
    if "(en)" in raw:  # the installed espeak-ng reads characters the English way
        assert found and "en" in found.switches
    english = foreign_phonemes("dɛ5ŋwˈɒ5n lɒ5ŋtˈuː5", "cmn")  # the transcript
    assert set(english.symbols) >= {"d", "ɒ"}


@pytest.mark.parametrize(("text", "voice", "lang"), [
    ("灯笼亮了。", "cmn", "cmn"), ("好的，我们走吧。", "cmn", "cmn"), ("那今晚走。", "cmn", "cmn"),
    ("船好了吗？", "yue", "yue"), ("The lanterns are lit.", "en", "en"),
])
def test_every_language_speaks_in_its_own_phonemes(text: str, voice: str, lang: str) -> None:
    found = check_spoken(text, voice, lang)
    assert not found, found.describe()


def test_a_line_in_the_wrong_script_is_named() -> None:
    bad = check_lines(["灯笼亮了。", "Where is the boat tonight?"], "cmn", "cmn")
    assert [text for text, _ in bad] == ["Where is the boat tonight?"]
