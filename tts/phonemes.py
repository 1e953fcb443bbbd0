"""English text to IPA phonemes through the espeak-ng library (ctypes; no Python package needed).

The command line `espeak-ng --ipa` drops punctuation and breaks lines at clauses, so the library's
`espeak_TextToPhonemes` is called clause by clause and the clause's punctuation is put back after it: the
TTS model hears where a comma or a question mark is. Optional: only models trained with
`text_frontend: phonemes` need it, and they say so clearly when espeak-ng is not installed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import threading
from functools import lru_cache

PUNCTUATION = ",.?!;:"
_CLAUSES = re.compile(rf"[^{PUNCTUATION}]+|[{PUNCTUATION}]+")
_LANGUAGE_SWITCH = re.compile(r"\([a-z-]+\)")  # espeak marks foreign words "(fr)...(en)"; the letters stay
_AUDIO_OUTPUT_SYNCHRONOUS = 0x02
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02
INSTALL_HINT = "install espeak-ng (Debian / Ubuntu: apt install espeak-ng; macOS: brew install espeak-ng)"


class PhonemizerUnavailable(RuntimeError):
    """libespeak-ng could not be loaded or set to the requested voice."""


# The library keeps one global state (its voice, its text position), so every call goes through one lock and
# sets the voice it needs when another instance left a different one.
_LOCK = threading.Lock()
_LIBRARY: list[ctypes.CDLL] = []  # the loaded, initialised library (once per process)
_VOICE_SET: list[str] = [""]


def load_library() -> ctypes.CDLL:
    """Load and initialise libespeak-ng; PhonemizerUnavailable (with how to install it) when it cannot."""
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        lib = ctypes.cdll.LoadLibrary(name)
    except OSError as e:
        raise PhonemizerUnavailable(f"this model reads phonemes and needs the espeak-ng library: {INSTALL_HINT} "
                                    f"({e})") from e
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    if lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0) <= 0:
        raise PhonemizerUnavailable(f"espeak-ng did not start (is its data installed?): {INSTALL_HINT}")
    return lib


class EspeakPhonemizer:
    """espeak-ng's IPA for one voice (default en-us, the voice `tts.text.PHONEME_ALPHABET` was measured on)."""

    def __init__(self, voice: str = "en-us") -> None:
        self.voice = voice
        with _LOCK:
            if not _LIBRARY:
                _LIBRARY.append(load_library())
            self._lib = _LIBRARY[0]
            self._set_voice()

    def _set_voice(self) -> None:
        """Make this instance's voice the library's (call with the lock held)."""
        if _VOICE_SET[0] != self.voice:
            if self._lib.espeak_SetVoiceByName(self.voice.encode()) != 0:
                raise PhonemizerUnavailable(f"espeak-ng has no voice {self.voice!r}")
            _VOICE_SET[0] = self.voice

    def _clause(self, text: str) -> str:
        """IPA of punctuation-free text, words separated by single spaces."""
        pointer = ctypes.c_char_p(text.encode("utf-8"))
        parts = []
        with _LOCK:
            self._set_voice()
            while pointer.value:  # the library moves the pointer on, to NULL after the last clause
                out = self._lib.espeak_TextToPhonemes(ctypes.byref(pointer), _CHARS_UTF8, _PHONEMES_IPA)
                if out:
                    parts.append(out.decode("utf-8"))
        ipa = _LANGUAGE_SWITCH.sub("", " ".join(parts))
        return " ".join(ipa.split())

    def __call__(self, text: str) -> str:
        """IPA of normalised text with its punctuation kept: 'hello, world.' -> 'həlˈoʊ, wˈɜːld.'"""
        out = ""
        for piece in _CLAUSES.findall(text):
            if piece[0] in PUNCTUATION:
                out = out.rstrip() + piece + " "
            elif any(c.isalpha() for c in piece):
                out += self._clause(piece) + " "
        return out.strip()


@lru_cache(maxsize=4)
def phonemizer(voice: str = "en-us") -> EspeakPhonemizer:
    """The process's phonemizer for `voice` (loading the library once)."""
    return EspeakPhonemizer(voice)


def espeak_available() -> bool:
    """Whether the espeak-ng library loads here (for tests and optional features)."""
    try:
        phonemizer()
    except PhonemizerUnavailable:
        return False
    return True


__all__ = ["EspeakPhonemizer", "PhonemizerUnavailable", "load_library", "phonemizer", "espeak_available", "PUNCTUATION",
           "INSTALL_HINT"]
