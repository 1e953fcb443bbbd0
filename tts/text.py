"""The TTS text front-end: normalisation of English text, then characters (or phonemes) as tokens.

Characters (`CharTokenizer`, the config's default) need nothing installed at synthesis time and are
deterministic and reversible, but the model has to learn spelling-to-sound itself. espeak-ng's IPA phonemes
(`text_frontend: phonemes`, `PhonemeTokenizer`) make every user install espeak-ng, and pay for it: English
spelling is irregular, and with phonemes the same small recipe learnt to read its words about four times as
fast (tts/README.md, Run 5), so the recipe and the shipped model read phonemes. A trained BPE would hide the
letters' sounds even further. Normalisation spells out what characters cannot say:
numbers, ordinals, currency, percentages, common abbreviations.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                      "nine": "ninth", "twelve": "twelfth"}
_ABBREVIATIONS = {"mr.": "mister", "mrs.": "missus", "ms.": "miz", "dr.": "doctor", "st.": "saint", "jr.": "junior",
                  "sr.": "senior", "vs.": "versus", "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is",
                  "no.": "number", "approx.": "approximately"}
_SYMBOLS = {"%": " percent", "&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number "}
_PUNCT_MAP = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": ", ", "\u2026": "...",
              "\u00a0": " "}

MAX_NUMBER = 10**15 - 1
# The fastest speaking rate the models allow for (fast speech says about 20): the TTS may not end speech
# sooner than this rate needs, the ASR may not write more than it gives.
MAX_CHARACTERS_PER_SECOND = 25.0


def number_to_words(n: int) -> str:
    """Cardinal English words: 1234 -> 'one thousand two hundred thirty four'; past MAX_NUMBER (serials, long
    codes) digit by digit, as people read them: 10^15 + 7 -> 'one zero ... zero seven'."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n > MAX_NUMBER:
        return _digit_words(str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for value, name in _SCALES:
        if n >= value:
            rest = n % value
            return number_to_words(n // value) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def year_to_words(n: int) -> str:
    """1984 -> 'nineteen eighty four', 1905 -> 'nineteen oh five', 2000 -> 'two thousand'."""
    if n % 1000 < 10:  # 2000, 2005, 1000..1009: "two thousand five"
        return number_to_words(n)
    high, low = divmod(n, 100)
    if low == 0:
        return number_to_words(high) + " hundred"
    return number_to_words(high) + " " + ("oh " + _ONES[low] if low < 10 else number_to_words(low))


def ordinal_to_words(n: int) -> str:
    """3 -> 'third', 21 -> 'twenty first', 40 -> 'fortieth'."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _digit_words(digits: str) -> str:
    """A digit string read one digit at a time: '407' -> 'four zero seven'."""
    return " ".join(_ONES[int(d)] for d in digits)


def _spell_number(match: re.Match) -> str:
    raw = match.group(0).replace(",", "")
    if "." in raw:
        whole, frac = raw.split(".", 1)
        return number_to_words(int(whole or 0)) + " point " + _digit_words(frac)
    n = int(raw)
    if len(raw) == 4 and 1100 <= n <= 2099:  # most four-digit numbers in running text are years
        return year_to_words(n)
    return number_to_words(n)


def _spell_money(match: re.Match) -> str:
    whole, cents = match.group(1).replace(",", ""), match.group(2)
    dollars = int(whole)
    text = number_to_words(dollars) + (" dollar" if dollars == 1 else " dollars")
    if cents and int(cents):
        text += " and " + number_to_words(int(cents)) + (" cent" if int(cents) == 1 else " cents")
    return " " + text + " "


def normalize_text(text: str) -> str:
    """Plain lower-case English that the character vocabulary can say; raises on nothing to say."""
    text = unicodedata.normalize("NFKC", text)
    for k, v in _PUNCT_MAP.items():
        text = text.replace(k, v)
    text = text.lower()
    for k, v in _ABBREVIATIONS.items():
        text = re.sub(rf"(?<![a-z]){re.escape(k)}", v + " ", text)
    text = re.sub(r"\$(\d[\d,]*)(?:\.(\d\d))?", _spell_money, text)
    text = re.sub(r"(\d+)(st|nd|rd|th)\b", lambda m: ordinal_to_words(int(m.group(1))), text)
    text = re.sub(r"\d[\d,]*(?:\.\d+)?", _spell_number, text)
    for k, v in _SYMBOLS.items():
        text = text.replace(k, v)
    text = re.sub(r"[\"()\[\]{}<>*_/\\|~^`]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,.?!;:])", r"\1", text)
    return text


class TextError(ValueError):
    """Text the front-end cannot turn into tokens, with a message that says why."""


@dataclass(frozen=True)
class CharTokenizer:
    """Characters of normalised English as ids; 0 = padding, 1 = begin, 2 = end of text."""

    alphabet: str = " abcdefghijklmnopqrstuvwxyz',.?!-;:"
    max_characters: int = 600

    PAD = 0
    BOS = 1
    EOS = 2

    @property
    def vocab_size(self) -> int:
        return 3 + len(self.alphabet)

    @property
    def input_alphabet(self) -> str:
        """The characters the text may have after normalisation."""
        return self.alphabet

    def clean(self, text: str, normalize: bool = True) -> str:
        """Normalised text checked against the alphabet; raises TextError on empty text or unsupported characters."""
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        clean = normalize_text(text) if normalize else text
        if not clean or not any(c.isalpha() for c in clean):
            raise TextError("text is empty: nothing to say" if not text.strip() else f"nothing to say in {text!r}")
        bad = sorted({c for c in clean if c not in self.input_alphabet})
        if bad:
            shown = " ".join(repr(c) for c in bad[:10])
            raise TextError(f"unsupported characters {shown}: this model reads English letters and . , ? ! ' - ; :")
        return clean

    def encode(self, text: str, normalize: bool = True) -> list[int]:
        """Text -> [BOS, chars..., EOS]; raises TextError on empty text, unsupported characters or too long."""
        clean = self.clean(text, normalize)
        if len(clean) > self.max_characters:
            raise TextError(f"text is too long: {len(clean)} characters after normalisation (max {self.max_characters}); split it")
        return [self.BOS] + [3 + self.alphabet.index(c) for c in clean] + [self.EOS]

    def id_of(self, char: str) -> int:
        """The id of one character of the alphabet."""
        return 3 + self.alphabet.index(char)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.alphabet[i - 3] for i in ids if i >= 3)


# What espeak-ng's en-us voice writes (measured on the project's 2,000 training transcripts and odd words), and
# the punctuation kept between clauses; a rare symbol outside it (another voice's) is left out.
PHONEME_ALPHABET = " ',.?!-;:abdefhijklmnoprstuvwxzæçðŋɐɑɒɔəɚɛɜɡɪɫɬɹɾʃʊʌʒʔʲθᵻ\u0329ˈˌː"


@dataclass(frozen=True)
class PhonemeTokenizer(CharTokenizer):
    """IPA phonemes of normalised English (espeak-ng, `tts.phonemes`) as ids, with the punctuation between
    clauses; the same special ids and the same checks on the text as `CharTokenizer`."""

    alphabet: str = PHONEME_ALPHABET
    voice: str = "en-us"

    @property
    def input_alphabet(self) -> str:
        return CharTokenizer.alphabet

    def encode(self, text: str, normalize: bool = True) -> list[int]:
        """Text -> [BOS, phonemes..., EOS]; TextError as `CharTokenizer.encode`; PhonemizerUnavailable without
        espeak-ng."""
        from .phonemes import phonemizer

        ipa = phonemizer(self.voice)(self.clean(text, normalize))
        ids = [3 + self.alphabet.index(c) for c in ipa if c in self.alphabet]
        if len(ids) > self.max_characters:
            raise TextError(f"text is too long: {len(ids)} phonemes (max {self.max_characters}); split it")
        return [self.BOS] + ids + [self.EOS]


TEXT_FRONTENDS = {"characters": CharTokenizer, "phonemes": PhonemeTokenizer}


def tokenizer_for(frontend: str) -> CharTokenizer:
    """The tokenizer of a model's `text_frontend` ("characters" or "phonemes"); for phonemes it loads espeak-ng
    now, so that a missing install fails here (PhonemizerUnavailable, with how to install it), not mid-way."""
    if frontend not in TEXT_FRONTENDS:
        raise ValueError(f"unknown text_frontend {frontend!r}; choose one of {', '.join(TEXT_FRONTENDS)}")
    tokenizer = TEXT_FRONTENDS[frontend]()
    if isinstance(tokenizer, PhonemeTokenizer):
        from .phonemes import phonemizer

        phonemizer(tokenizer.voice)
    return tokenizer


__all__ = ["MAX_CHARACTERS_PER_SECOND", "normalize_text", "number_to_words", "year_to_words", "ordinal_to_words", "CharTokenizer",
           "PhonemeTokenizer", "PHONEME_ALPHABET", "TEXT_FRONTENDS", "tokenizer_for", "TextError"]
