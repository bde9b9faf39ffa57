"""Phoneme timings from espeak-ng itself: its library's phoneme events (libespeak-ng, through
ctypes), each phoneme in IPA with the sample it starts at.

The library speaks the same text with the same voice and rate as the `espeak-ng` command that
made the take, so the speech is the same; times are measured from the speech's first sound
(leading silence cut the same way as the take's). The library keeps global state: one
synthesis at a time in a process.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

_LOCK = threading.Lock()
_AUDIO_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS, _INIT_PHONEME_IPA = 0x0001, 0x0002
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_RATE_PARAMETER = 1
_POS_CHARACTER, _CHARS_UTF8 = 1, 1


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p),
                ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass(frozen=True, slots=True)
class Phoneme:
    """One phoneme of a take: IPA, start and end in seconds from the take's first sample."""

    ipa: str
    start: float
    end: float


class EspeakLibrary:
    """libespeak-ng, initialised once for phoneme events in IPA."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libespeak-ng.so.1")
        self.rate = int(self.lib.espeak_Initialize(
            _AUDIO_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA))
        if self.rate <= 0:
            raise OSError("libespeak-ng could not start")
        self._samples: list[NDArray[np.int16]] = []
        self._events: list[tuple[int, str]] = []
        self._callback = _CALLBACK(self._collect)  # kept: the library holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int,
                 events: ctypes._Pointer[_Event]) -> int:
        if count > 0 and wav:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        n = 0
        while events[n].type != _EVENT_LIST_TERMINATED:
            event = events[n]
            if event.type == _EVENT_PHONEME:
                name = event.id.string.decode("utf-8", "replace")
                self._events.append((int(event.sample), name))
            n += 1
        return 0

    def speak(self, text: str, voice: str,
              wpm: int) -> tuple[NDArray[np.int16], list[tuple[int, str]]]:
        """(samples, [(start sample, IPA)]) of `text` spoken by `voice` at `wpm`."""
        self._samples, self._events = [], []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise OSError(f"espeak-ng voice {voice!r} is not installed")
        self.lib.espeak_SetParameter(_RATE_PARAMETER, wpm, 0)
        data = text.encode("utf-8")
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None,
                              None)
        self.lib.espeak_Synchronize()
        samples = np.concatenate(self._samples) if self._samples else np.zeros(0, np.int16)
        return samples, list(self._events)


_library: EspeakLibrary | None = None


def phonemes(text: str, voice: str, wpm: int) -> tuple[list[Phoneme], float]:
    """The phonemes of `text` as espeak-ng speaks it, timed from its first sound (the way a
    take's silence is cut); (phonemes, seconds of speech)."""
    from wanhe.voice.audio import speech_bounds

    global _library
    with _LOCK:
        if _library is None:
            _library = EspeakLibrary()
        samples, events = _library.speak(text, voice, wpm)
        rate = _library.rate
    audio = samples.astype(np.float32) / 32768.0
    first, end = speech_bounds(audio, rate)
    out: list[Phoneme] = []
    marks = [(s, name.strip()) for s, name in events] + [(len(samples), "")]
    for (at, name), (nxt, _) in itertools.pairwise(marks):
        if not name or nxt <= at:
            continue
        a, b = max(at, first), min(nxt, end)
        if b > a:
            out.append(Phoneme(name, (a - first) / rate, (b - first) / rate))
    return out, max(0, end - first) / rate
