"""The phoneme front-end: espeak-ng's IPA with the punctuation kept, its tokenizer, and a clear error without it."""

from __future__ import annotations

import ctypes.util

import pytest
from helpers.tiny import TINY  # noqa: E402  (the shared tiny configuration)
from helpers.tiny_tts import tiny_config

from catcodec import CATConfig, CATModel
from tts import phonemes
from tts.configuration_tts import CATTTSConfig
from tts.modeling_tts import CATTTSModel
from tts.pipeline import TTSPipeline
from tts.text import PHONEME_ALPHABET, CharTokenizer, PhonemeTokenizer, TextError, tokenizer_for

needs_espeak = pytest.mark.skipif(not phonemes.espeak_available(), reason="espeak-ng library not installed")


@needs_espeak
def test_punctuation_survives_between_clauses():
    ipa = phonemes.phonemizer()("hello, world. is it raining? yes!")
    words = ipa.split(" ")
    assert len(words) == 6  # one IPA word per word: clauses are not split into lines
    assert [w[-1] for w in words if w[-1] in ",.?!"] == [",", ".", "?", "!"]
    assert words[1].endswith(".") and words[0].endswith(",")


@needs_espeak
def test_words_spelled_differently_but_said_alike_get_the_same_phonemes():
    p = phonemes.phonemizer()
    assert p("knight") == p("night")
    assert p("write") == p("right")
    assert p("cough") != p("dough")  # ... and words spelled alike but said differently do not


@needs_espeak
def test_phoneme_tokenizer_round_trip_and_limits():
    tok = PhonemeTokenizer()
    ids = tok.encode("It's 5 o'clock, Mr. Smith.")
    assert ids[0] == tok.BOS and ids[-1] == tok.EOS
    assert all(3 <= i < tok.vocab_size for i in ids[1:-1])
    text = tok.decode(ids)
    assert text == phonemes.phonemizer()("it's five o'clock, mister smith.")  # normalised first
    assert "," in text and text.endswith(".")
    assert tok.id_of(" ") in ids
    with pytest.raises(TextError, match="unsupported characters"):
        tok.encode("naïve café")  # the same check on the input text as the character tokenizer's
    with pytest.raises(TextError, match="empty"):
        tok.encode("   ")
    with pytest.raises(TextError, match="phonemes"):
        PhonemeTokenizer(max_characters=5).encode("a long sentence")


@needs_espeak
def test_two_voices_do_not_mix():
    """The library has one global voice: each phonemizer sets its own before it speaks."""
    us, scottish = phonemes.EspeakPhonemizer("en-us"), phonemes.EspeakPhonemizer("en-gb-scotland")
    assert us("water") != scottish("water")
    assert us("water") == phonemes.EspeakPhonemizer("en-us")("water")
    with pytest.raises(phonemes.PhonemizerUnavailable, match="no voice 'xx-nowhere'"):
        phonemes.EspeakPhonemizer("xx-nowhere")


@needs_espeak
def test_every_training_symbol_is_in_the_alphabet():
    text = "the quick brown fox jumps over the lazy dog; button, little, hour: loch bach zurich jalapeno!"
    ipa = phonemes.phonemizer()(text)
    assert set(ipa) <= set(PHONEME_ALPHABET)


def test_tokenizer_for_names_the_front_ends():
    assert isinstance(tokenizer_for("characters"), CharTokenizer)
    assert tokenizer_for("characters").vocab_size == 38
    with pytest.raises(ValueError, match="unknown text_frontend 'ipa'"):
        tokenizer_for("ipa")
    with pytest.raises(ValueError, match="text_frontend"):
        CATTTSConfig(text_frontend="ipa")


def test_missing_espeak_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libno-such-espeak.so.9")
    with pytest.raises(phonemes.PhonemizerUnavailable, match="apt install espeak-ng"):
        phonemes.load_library()


@needs_espeak
def test_pipeline_refuses_a_tokenizer_the_model_cannot_read():
    codec = CATModel(CATConfig(**TINY))
    phoneme_model = CATTTSModel(tiny_config(codebook_size=TINY["codebook_size"], text_frontend="phonemes",
                                            text_vocab_size=PhonemeTokenizer().vocab_size))
    assert isinstance(TTSPipeline(phoneme_model, codec).tokenizer, PhonemeTokenizer)  # chosen from the config
    with pytest.raises(ValueError, match="the tokenizer has 38 symbols, the TTS model reads 64"):
        TTSPipeline(phoneme_model, codec, tokenizer=CharTokenizer())


@needs_espeak
def test_tts_task_reads_phonemes_when_the_recipe_says_so():
    from training.config import TrainConfig
    from training.task import get_task

    config = TrainConfig(task_name="tts", output_dir="unused", task={"model": {"text_frontend": "phonemes"}})
    task = get_task("tts")(config)
    assert isinstance(task.tokenizer, PhonemeTokenizer)
    assert task.model_config.text_vocab_size == PhonemeTokenizer().vocab_size == len(PHONEME_ALPHABET) + 3


def test_a_phoneme_model_without_espeak_fails_cleanly(tmp_path, monkeypatch, capsys):
    """Where espeak-ng is missing, a phoneme model stops `catcodec-tts` with how to install it, and the demo opens
    without its TTS tab when the bundled model is the one that cannot load (a given --tts-model is an error)."""
    from demo import models as demo_models
    from demo.errors import DemoError
    from tts.cli import main as tts_main

    codec = CATModel(CATConfig(**TINY))
    codec.save_pretrained(tmp_path / "codec")
    CATTTSModel(tiny_config(codebook_size=TINY["codebook_size"], text_frontend="phonemes", codec_name=str(tmp_path / "codec"),
                            text_vocab_size=len(PHONEME_ALPHABET) + 3)).save_pretrained(tmp_path / "tts")

    def missing(voice: str = "en-us"):
        raise phonemes.PhonemizerUnavailable(f"this model reads phonemes and needs the espeak-ng library: {phonemes.INSTALL_HINT}")

    monkeypatch.setattr(phonemes, "phonemizer", missing)
    assert tts_main(["Hello.", "-o", str(tmp_path / "o.wav"), "--model", str(tmp_path / "tts")]) == 2
    assert "catcodec-tts: error: this model reads phonemes" in capsys.readouterr().err
    assert not (tmp_path / "o.wav").exists()
    with pytest.raises(DemoError, match="apt install espeak-ng"):
        demo_models.load_tts(str(tmp_path / "tts"), codec, str(tmp_path / "codec"))
    monkeypatch.setattr(demo_models, "TTS_BUNDLED", tmp_path / "tts")
    pipeline, note = demo_models.load_tts(None, codec, str(tmp_path / "codec"))
    assert pipeline is None and note.startswith("The bundled TTS model reads phonemes") and "apt install espeak-ng" in note
