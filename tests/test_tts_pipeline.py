"""TTSPipeline and catcodec-tts on a tiny TTS model and a tiny codec saved in a temporary folder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from catcodec import CATConfig, CATModel
from tts.cli import main as tts_main
from tts.configuration_tts import CATTTSConfig
from tts.depth_decoding import DepthStepper
from tts.modeling_tts import CATTTSModel
from tts.pipeline import TTSPipeline
from tts.text import MAX_CHARACTERS_PER_SECOND, CharTokenizer, TextError

CODEC = dict(sampling_rate=16000, patch_size=40, stage_dims=[32, 32, 32, 48], stage_layers=[1, 1, 1, 1],
             stage_heads=[2, 2, 2, 2], stage_output_dims=[16, 16, 24, 32], quantizer_dim=32, num_quantizers=4,
             codebook_size=64)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tts")
    CATModel(CATConfig(**CODEC)).save_pretrained(root / "codec")
    tts = CATTTSModel(CATTTSConfig(num_quantizers=3, codebook_size=64, hidden_size=32, num_layers=1, num_heads=2,
                                   intermediate_size=64, depth_hidden_size=32, depth_num_layers=1, depth_num_heads=2,
                                   depth_intermediate_size=64, max_positions=256, codec_name=str(root / "codec"),
                                   text_vocab_size=CharTokenizer().vocab_size))
    tts.save_pretrained(root / "tts")
    return root


def test_pipeline_audio_and_streaming_match(folders):
    tts = TTSPipeline.from_pretrained(folders / "tts")  # the codec comes from the model's config
    audio = tts("Hello there.", seed=1, temperature=0, max_seconds=1.0)
    hop = tts.codec.config.hop_length
    frames_max = int(1.0 * tts.codec.config.frame_rate)  # max_seconds * frames per second
    assert audio.dtype == np.float32 and audio.size % hop == 0 and 0 < audio.size <= frames_max * hop
    chunks = list(tts.stream("Hello there.", seed=1, temperature=0, max_seconds=1.0))
    assert all(c.size == hop for c in chunks)
    assert np.allclose(np.concatenate(chunks), audio, atol=1e-5)
    # fewer codebooks: same length budget, other audio
    coarse = tts("Hello there.", num_quantizers=1, temperature=0, max_seconds=1.0)
    assert coarse.size % hop == 0


def test_pipeline_refuses_a_codec_other_than_the_one_it_was_trained_on(folders, tmp_path):
    codec = CATModel.from_pretrained(folders / "codec")
    model = CATTTSModel.from_pretrained(folders / "tts")
    model.config.codec_weights_id = codec.codes_fingerprint()
    assert TTSPipeline(model, codec).codec is codec  # the codec it was trained on
    torch.manual_seed(1)
    other = CATModel(CATConfig(**CODEC))  # same shape, other weights: same code values, other sounds
    with pytest.raises(ValueError, match=r"the TTS model was trained on the codes of codec weights .* but this codec's"):
        TTSPipeline(model, other)
    model.config.codec_weights_id = ""  # not recorded (models trained before it was): not checked
    assert TTSPipeline(model, other).codec is other


def test_pipeline_errors(folders, tmp_path):
    tts = TTSPipeline.from_pretrained(folders / "tts")
    with pytest.raises(TextError, match="empty"):
        tts("   ")
    with pytest.raises(TextError, match="unsupported"):
        tts("\u4f60\u597d")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000)
    with pytest.raises(ValueError, match="silent"):
        tts("hi", prompt=str(silent))
    long = tmp_path / "long.wav"
    sf.write(long, (0.1 * np.random.default_rng(0).standard_normal(16000 * 16)).astype(np.float32), 16000)
    with pytest.raises(ValueError, match="too long"):
        tts("hi", prompt=str(long))
    with pytest.raises(ValueError, match="num_quantizers"):
        tts("hi", num_quantizers=9)


def test_voice_prompt_is_used(folders, tmp_path):
    tts = TTSPipeline.from_pretrained(folders / "tts")
    ref = tmp_path / "ref.wav"
    sf.write(ref, (0.2 * np.sin(np.linspace(0, 2000, 8000))).astype(np.float32), 16000)
    plain = tts("yes", temperature=0, max_seconds=0.5)
    prompted = tts("yes", prompt=str(ref), prompt_text="a tone", temperature=0, max_seconds=0.5)
    assert prompted.size > 0 and not (plain.size == prompted.size and np.allclose(plain, prompted))


def test_cli(folders, tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.wav"
    code = tts_main(["Good day.", "-o", str(out), "--model", str(folders / "tts"), "--seed", "0", "--stream",
                     "--max-seconds", "0.5"])
    assert code == 0
    wav, sr = sf.read(out)
    assert sr == 16000 and wav.size > 0
    assert "first audio after" in capsys.readouterr().out
    assert tts_main(["", "-o", str(out), "--model", str(folders / "tts")]) == 2
    assert "catcodec-tts: error: text is empty" in capsys.readouterr().err
    assert tts_main(["hi", "-o", str(out), "--model", str(tmp_path / "nope")]) == 2
    assert "is not a TTS model folder" in capsys.readouterr().err
    import tts.pipeline

    def no_loading(*args, **kwargs):
        raise AssertionError("models loaded before the prompt file was checked")

    with monkeypatch.context() as m:  # a missing prompt fails before any model loads
        m.setattr(tts.pipeline.TTSPipeline, "from_pretrained", no_loading)
        assert tts_main(["hi", "-o", str(out), "--model", str(folders / "tts"), "--prompt", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav': file not found" in capsys.readouterr().err
    monkeypatch.setattr(tts.pipeline, "PRETRAINED", tmp_path / "nothing bundled")
    assert tts_main(["hi", "-o", str(out)]) == 2  # no bundled weights: says how to train
    assert "no TTS weights are bundled yet" in capsys.readouterr().err


def test_end_of_speech_cannot_come_before_the_text_could_be_said(folders, monkeypatch):
    tts = TTSPipeline.from_pretrained(folders / "tts")
    eos, plain = tts.model.config.end_of_speech_id, DepthStepper.start

    def always_stop(self, context):  # a model that always wants to end: only the minimum keeps it talking
        logits = plain(self, context).clone()  # a frame's first level: where the end of speech is predicted
        logits[..., eos] = 1e4
        return logits

    monkeypatch.setattr(DepthStepper, "start", always_stop)
    text = "A sentence of forty nine characters, give or take"
    chars = len(CharTokenizer().encode(text)) - 2
    frames = len(list(tts.stream(text, temperature=0, max_seconds=10.0)))
    assert chars == 49 and frames == math.ceil(chars * tts.codec.config.frame_rate / MAX_CHARACTERS_PER_SECOND)
    assert len(list(tts.stream(text, temperature=0, max_seconds=0.5))) == int(0.5 * tts.codec.config.frame_rate)


def test_a_prompt_transcript_sets_the_speaking_rate(folders, monkeypatch):
    """aligned_positions: the prompt's characters per frame (clamped to what speech allows), else the default."""
    import tts.pipeline as pipeline_module

    tts = TTSPipeline.from_pretrained(folders / "tts")
    seen = []
    monkeypatch.setattr(pipeline_module, "iter_frames", lambda *args, **kwargs: seen.append(kwargs["chars_per_frame"]) or iter(()))
    rate = tts.sampling_rate
    prompt = (0.2 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)).astype(np.float32)  # 1 s
    frames = tts._prompt_codes(prompt, 1).shape[1]
    fps = tts.codec.config.frame_rate
    list(tts.stream("hello there", prompt=prompt, prompt_text="one two"))  # 7 characters + the joining space
    list(tts.stream("hello there"))
    list(tts.stream("hello there", prompt=prompt, prompt_text="x"))  # far too few for a second of speech
    list(tts.stream("hello there", prompt=prompt, prompt_text="word " * 20))  # far too many
    assert 3.0 / fps < 8 / frames < MAX_CHARACTERS_PER_SECOND / fps and seen[0] == pytest.approx(8 / frames)
    assert seen[1] is None  # the model's chars_per_frame
    assert seen[2] == pytest.approx(3.0 / fps) and seen[3] == pytest.approx(MAX_CHARACTERS_PER_SECOND / fps)


def test_bundled_weights_follow_their_text_and_stop_by_themselves():
    """The shipped CAT-TTS loads with the shipped codec (same codes) and has learnt its alignment: on the bundled
    clip (a held-out speaker) and its transcript, the guided heads' attention runs along the text's diagonal.
    Then, prompted with that clip, it says a short sentence and ends it itself. A guard against a broken export."""
    from catcodec.audio import load_audio
    from catcodec.cli import EXAMPLE_AUDIO
    from tts.phonemes import espeak_available
    from tts.pipeline import DEFAULT_MODEL, PRETRAINED

    if not (PRETRAINED / DEFAULT_MODEL / "config.json").is_file():
        pytest.skip("no TTS weights bundled")
    if CATTTSConfig.from_pretrained(PRETRAINED / DEFAULT_MODEL).text_frontend == "phonemes" and not espeak_available():
        pytest.skip("the bundled TTS reads phonemes and espeak-ng is not installed")
    torch.set_num_threads(2)
    tts = TTSPipeline.from_pretrained()  # refuses a codec whose codes differ from the ones it was trained on
    model, k = tts.model.eval(), tts.model.config.num_quantizers
    assert tts.codec.codes_fingerprint() == model.config.codec_weights_id  # the codec its folder carries (codec/)
    wav = load_audio(EXAMPLE_AUDIO, tts.sampling_rate)
    text = "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."
    ids = torch.tensor([tts.tokenizer.encode(text)])
    with torch.no_grad():
        codes = tts.codec.encode(torch.from_numpy(wav)[None, None], num_quantizers=k).audio_codes
        out = model(ids, torch.tensor([ids.shape[1]]), codes, torch.tensor([codes.shape[-1]]), levels=torch.tensor([k]),
                    output_attentions=True)
    # the share of the guided heads' attention off the text's diagonal: about 0.01 for the trained model; 0.99 for
    # run 3, whose guided heads had learnt to look away from the text; 0.69 for an untrained model
    assert float(out.attention_penalty) < 0.2

    audio = tts("I will see you tomorrow.", prompt=wav, prompt_text=text, seed=0, max_seconds=6.0)
    seconds = audio.size / tts.sampling_rate
    assert 0.8 < seconds < 4.5, f"{seconds:.2f} s for five words: end of speech not predicted"
    assert np.isfinite(audio).all() and float(np.sqrt(np.mean(audio**2))) > 1e-3
    # two words: the model first says the pause after the prompt (5-8 frames of silence); ending inside it, as
    # before the pause floor (PROMPT_PAUSE_SECONDS), gave 0.4 s with no frame louder than -70 dBFS
    from asr.segment import frame_energy_db

    audio = tts("Thank you.", prompt=wav, prompt_text=text, seed=0, max_seconds=6.0)
    loud = int((frame_energy_db(audio, tts.codec.config.hop_length) > -45).sum())
    assert loud >= 4 and audio.size / tts.sampling_rate < 4.5, (loud, audio.size / tts.sampling_rate)
