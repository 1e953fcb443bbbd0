"""The TTS text front-end: number spelling, normalisation, character tokens, clear errors."""

from __future__ import annotations

import pytest

from tts.text import CharTokenizer, TextError, normalize_text, number_to_words, ordinal_to_words, year_to_words


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (7, "seven"),
        (15, "fifteen"),
        (40, "forty"),
        (42, "forty two"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (1234, "one thousand two hundred thirty four"),
        (1_000_000, "one million"),
        (2_000_017, "two million seventeen"),
        (-3, "minus three"),
    ],
)
def test_number_to_words(n, words):
    assert number_to_words(n) == words


def test_years_and_ordinals():
    assert year_to_words(1984) == "nineteen eighty four"
    assert year_to_words(1905) == "nineteen oh five"
    assert year_to_words(1900) == "nineteen hundred"
    assert year_to_words(2000) == "two thousand"
    assert year_to_words(2019) == "twenty nineteen"
    assert [ordinal_to_words(n) for n in (1, 2, 3, 5, 12, 21, 40)] == [
        "first", "second", "third", "fifth", "twelfth", "twenty first", "fortieth"]


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("Hello,   World!", "hello, world!"),
        ("Dr. Smith paid $3.50 on May 3rd, 1984.", "doctor smith paid three dollars and fifty cents on may third, nineteen eighty four."),
        ("It costs $1 & 50% off", "it costs one dollar and fifty percent off"),
        ("Pi is 3.14", "pi is three point one four"),
        ("1,000,000 people", "one million people"),
        ("\u201cQuoted\u201d \u2014 dash", "quoted, dash"),
        ("Room 2500", "room two thousand five hundred"),
        # past 10^15 a number is read digit by digit (a fortune quotation held a 36-digit one)
        ("Code 1000000000000000007", "code one zero zero zero zero zero zero zero zero zero zero zero zero zero zero "
                                     "zero zero zero seven"),
        ("$12345678901234567 or 2.00000000000000001", "one two three four five six seven eight nine zero one two "
         "three four five six seven dollars or two point " + "zero " * 16 + "one"),
        ("the 99999999999999999th", "the " + "nine " * 16 + "ninth"),
    ],
)
def test_normalize_text(raw, clean):
    assert normalize_text(raw) == clean


def test_tokenizer_round_trip_and_ids():
    tok = CharTokenizer()
    ids = tok.encode("Hi, 2 cats!")
    assert ids[0] == tok.BOS and ids[-1] == tok.EOS
    assert tok.decode(ids) == "hi, two cats!"
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert len(set(tok.alphabet)) == len(tok.alphabet)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("?!...", "nothing to say"),
        ("naïve café", "unsupported characters"),
        ("\u4f60\u597d", "unsupported characters"),
        ("a " * 400, "too long"),
    ],
)
def test_tokenizer_errors(text, message):
    with pytest.raises(TextError, match=message):
        CharTokenizer().encode(text)
