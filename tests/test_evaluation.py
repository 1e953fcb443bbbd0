"""Tests for catcodec.evaluation and `catcodec eval`: metrics on synthetic signals with known answers,
delay alignment, baseline specs, WER, and the command end to end on a tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import catcodec
from catcodec import CATConfig, CATModel
from catcodec.cli import main
from catcodec.evaluation.asr import character_errors, normalize_text, wer_counts, word_error_rate
from catcodec.evaluation.baselines import CODEC2_MODES, Baseline, opus_payload_bytes, parse_baselines
from catcodec.evaluation.metrics import estimate_delay, fit_length, shift, si_sdr, time_align
from catcodec.evaluation.run import select_items

SR = 16000

from helpers.tiny import TINY  # noqa: E402  (the shared tiny configuration)


pytestmark = pytest.mark.usefixtures("single_thread")  # conftest: tiny models run best on one thread


def speech_like(seconds: float = 3.0, seed: int = 0, f0: float = 130.0) -> np.ndarray:
    """Voiced-speech stand-in: harmonics of a gliding f0 under a formant-like tilt, modulated at a syllable
    rate (4 Hz) down to a -20 dB floor between syllables, with short pauses and a little breath noise.

    The floor matters for STOI: where the reference envelope drops to nothing inside a 384 ms analysis
    segment, STOI's clipping step makes even independent noise follow it (noise scores about 0.4 then)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t) + 0.03 * np.sin(2 * np.pi * 3.1 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    voiced = np.zeros_like(t)
    for h in range(1, 30):
        if h * f0 * 1.1 > 7000:
            break
        formant = np.exp(-((h * f0 - 600) / 400) ** 2) + 0.5 * np.exp(-((h * f0 - 1800) / 500) ** 2) + 0.15
        voiced += formant / h**0.5 * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
    syllables = 0.1 + 0.9 * np.clip(np.sin(2 * np.pi * 4.0 * t), 0, None) ** 1.5
    phrase = (np.sin(2 * np.pi * 0.45 * t + 0.3) > -0.6).astype(float)  # a pause now and then
    x = voiced * syllables * phrase + 0.01 * rng.standard_normal(t.shape)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------
# metrics


def test_identical_audio_scores_perfectly():
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from catcodec.evaluation.metrics import pesq_nb, pesq_wb, stoi

    x = speech_like()
    assert si_sdr(x, x) > 80
    assert stoi(x, x) > 0.99
    assert pesq_wb(x, x) > 4.4
    assert pesq_nb(x, x) > 4.0


def test_noise_against_speech_scores_badly():
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from catcodec.evaluation.metrics import pesq_wb, stoi

    x = speech_like()
    noise = 0.1 * np.random.default_rng(1).standard_normal(x.shape)
    assert stoi(x, noise) < 0.3
    assert pesq_wb(x, noise) < 1.5
    assert si_sdr(noise, x) < -10


def test_pesq_raises_on_silence():
    pytest.importorskip("pesq")
    from catcodec.evaluation.metrics import pesq_wb

    with pytest.raises(ValueError, match="silent"):
        pesq_wb(np.zeros(SR), np.zeros(SR))
    with pytest.raises(Exception):  # the pesq package's own error: too short to hold an utterance
        pesq_wb(speech_like(seconds=0.1), speech_like(seconds=0.1))


def test_speaker_similarity_same_voice_beats_noise():
    pytest.importorskip("resemblyzer")
    from catcodec.evaluation.metrics import speaker_similarity

    x = speech_like(seconds=2.0)
    assert speaker_similarity(x, x) == pytest.approx(1.0, abs=1e-5)
    noise = 0.1 * np.random.default_rng(2).standard_normal(x.shape)
    assert speaker_similarity(x, noise) < 0.95
    with pytest.raises(ValueError):
        speaker_similarity(x, np.zeros_like(x))


def test_delay_alignment_recovers_a_known_shift():
    x = speech_like()
    d = int(0.007 * SR)  # 7 ms = 112 samples
    late = np.concatenate([np.zeros(d), x])[: x.shape[0]]
    early = np.concatenate([x[d:], np.zeros(d)])
    assert estimate_delay(x, late) == d
    assert estimate_delay(x, early) == -d
    aligned, delay = time_align(x, np.concatenate([np.zeros(d), x]))  # longer than the reference
    assert delay == d and aligned.shape == x.shape
    assert si_sdr(aligned, x) > 60
    # beyond the +-50 ms search window it is not found
    far = np.concatenate([np.zeros(int(0.08 * SR)), x])[: x.shape[0]]
    assert abs(estimate_delay(x, far)) <= int(0.05 * SR)


def test_delay_alignment_of_an_envelope_only_match():
    """A signal with the same envelope but other phases (what a parametric codec returns) still aligns."""
    x = speech_like(seed=0)
    other = speech_like(seed=5)  # same envelope and pitch, different harmonic phases and breath noise
    d = int(0.02 * SR)
    late = np.concatenate([np.zeros(d), other])[: x.shape[0]]
    assert abs(estimate_delay(x, late) - d) <= int(0.002 * SR)


def test_shift_and_fit_length():
    x = np.arange(10.0)
    assert fit_length(x, 12).tolist() == list(range(10)) + [0, 0]
    assert shift(x, 3, 10).tolist() == list(range(3, 10)) + [0, 0, 0]
    assert shift(x, -2, 10).tolist() == [0, 0] + list(range(8))


# ---------------------------------------------------------------------------------------------------------
# baselines


def test_baseline_spec_parsing():
    b = Baseline.parse("opus:6")
    assert (b.codec, b.bitrate, b.name, b.nominal_kbps, b.label) == ("opus", "6", "opus:6", 6.0, "Opus 6k")
    assert Baseline.parse(" Opus:7.5k ").nominal_kbps == 7.5
    c = Baseline.parse("codec2:700c")
    assert (c.name, c.nominal_kbps) == ("codec2:700C", 0.7)
    assert Baseline.parse("codec2:1300").nominal_kbps == 1.3
    assert set(CODEC2_MODES) == {"3200", "2400", "1600", "1400", "1300", "1200", "700C"}
    assert [x.name for x in parse_baselines(["opus:6", "opus:6.0", "codec2:3200"])] == ["opus:6", "codec2:3200"]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("mp3:128", "unknown baseline codec"),
        ("opus:six", "not a number"),
        ("opus:", "CODEC:BITRATE"),
        ("opus", "CODEC:BITRATE"),
        ("opus:2", "6..510"),
        ("opus:nan", "6..510"),
        ("codec2:2000", "not a codec2 mode"),
        ("codec2:fast", "not a codec2 mode"),
        ("codec2:450", "3200, 2400, 1600, 1400, 1300, 1200, 700C"),
    ],
)
def test_baseline_spec_errors(spec, words):
    with pytest.raises(ValueError, match=words):
        Baseline.parse(spec)


def _ogg_page(packets_lacing: list[int], payload: bytes) -> bytes:
    header = b"OggS" + bytes([0, 0]) + bytes(8) + bytes(4) + bytes(4) + bytes(4) + bytes([len(packets_lacing)])
    return header + bytes(packets_lacing) + payload


def test_opus_payload_bytes_leaves_out_headers():
    # page 1: OpusHead (19 bytes); page 2: OpusTags (300 bytes: lacing 255 + 45); page 3: two packets of 20 and 30
    data = _ogg_page([19], bytes(19)) + _ogg_page([255, 45], bytes(300)) + _ogg_page([20, 30], bytes(50))
    assert opus_payload_bytes(data) == 50
    assert opus_payload_bytes(b"not an ogg file") == len(b"not an ogg file")


@pytest.mark.parametrize("spec", ["opus:6", "codec2:3200"])
def test_baseline_round_trip(spec):
    b = Baseline.parse(spec)
    ok, why = b.available()
    if not ok:
        pytest.skip(why)
    x = speech_like(seconds=1.5)
    out = b.run(x)
    assert abs(out.audio.shape[0] - x.shape[0]) < 0.05 * SR
    assert np.isfinite(out.audio).all() and np.abs(out.audio).max() > 0.01
    assert 0.5 * b.nominal_kbps < out.real_kbps < 1.5 * b.nominal_kbps
    assert out.file_kbps >= out.real_kbps
    aligned, delay = time_align(x, out.audio)
    assert abs(delay) <= 0.05 * SR


def test_missing_tool_is_a_note_not_an_error(monkeypatch):
    import catcodec.evaluation.baselines as bl

    monkeypatch.setattr(bl.shutil, "which", lambda name: None)
    ok, why = Baseline.parse("codec2:1300").available()
    assert not ok and "c2enc" in why and "apt-get install codec2" in why


# ---------------------------------------------------------------------------------------------------------
# WER


def test_word_error_rate():
    pytest.importorskip("jiwer")
    assert word_error_rate("the cat sat down", "the dog sat down") == 0.25
    assert word_error_rate(["The cat, sat down.", "Hello world"], ["the cat sat down", "hello"]) == pytest.approx(1 / 6)
    assert word_error_rate(["one two"], [""]) == 1.0  # nothing recognised: all deletions
    assert word_error_rate(["a b"], ["a b c d"]) == 1.0  # insertions count
    assert math.isnan(word_error_rate([""], ["anything"]))
    counts = wer_counts(["a b c d"], ["a x c"])
    assert (counts.substitutions, counts.deletions, counts.insertions, counts.words) == (1, 1, 0, 4)


def test_character_errors():
    pytest.importorskip("jiwer")
    assert character_errors("The cat.", "the bat") == (1, 7)  # "the cat" vs "the bat": one substitution
    assert character_errors("ab", "") == (2, 2)  # nothing recognised: every character deleted
    assert character_errors("ab", "abcd") == (2, 2)  # insertions count
    assert character_errors("", "anything") == (0, 0)
    # a near miss costs a whole word in WER but one character in CER
    assert word_error_rate("so many pearls", "so many girls") == pytest.approx(1 / 3)
    errors, chars = character_errors("so many pearls", "so many girls")
    assert errors == 3 and chars == 14


def test_normalize_text():
    assert normalize_text("Don't STOP: 3 times-over, Mr. Bob!") == "dont stop 3 times over mr bob"
    assert normalize_text("  [noise] hello <sil> ") == "hello"
    assert normalize_text(None) == ""


def test_pocketsphinx_runs_on_silence():
    pytest.importorskip("pocketsphinx")
    from catcodec.evaluation.asr import PocketsphinxASR

    asr = PocketsphinxASR()
    assert isinstance(asr.transcribe(np.zeros(SR // 2)), str)
    assert asr.transcribe(np.zeros(0)) == ""


def test_pocketsphinx_transcripts_do_not_depend_on_what_came_before():
    pytest.importorskip("pocketsphinx")
    from catcodec.audio import load_audio
    from catcodec.evaluation.asr import PocketsphinxASR

    speech = load_audio(Path(catcodec.__file__).parent / "assets" / "vctk_p225_003.flac", SR)
    reversed_speech = 0.5 * speech[::-1].copy()  # hard to read, so it is sensitive to the decoder's state
    fresh = PocketsphinxASR().transcribe(reversed_speech)
    asr = PocketsphinxASR()
    for before in (speech, 0.3 * np.sin(2 * np.pi * 300 * np.arange(SR * 2) / SR), speech):
        asr.transcribe(before)
    assert asr.transcribe(reversed_speech) == fresh  # before the fix: another transcript after those three


def test_select_items_spreads_evenly():
    items = list(range(23))
    assert select_items(items, None) == items
    assert select_items(items, 50) == items
    picked = select_items(items, 12)
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 22
    assert select_items(items, 1) == [0]


# ---------------------------------------------------------------------------------------------------------
# the command end to end


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def eval_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    torch.manual_seed(0)
    CATModel(CATConfig(**TINY)).save_pretrained(root / "tiny")
    audio_dir = root / "audio"
    audio_dir.mkdir()
    lines = []
    for i, (text, f0) in enumerate([("hello world", 120.0), ("the cat sat down", 210.0)]):
        sf.write(audio_dir / f"utt{i}.wav", speech_like(seconds=1.5, seed=i, f0=f0).astype(np.float32), SR)
        lines.append(json.dumps(dict(audio=f"audio/utt{i}.wav", text=text, speaker=f"s{i}", sample_rate=SR, duration=1.5, id=f"utt{i}")))
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return dict(root=root, model=root / "tiny", manifest=manifest)


def test_eval_cli_end_to_end(capsys, eval_files):
    for package in ("pesq", "pystoi", "jiwer", "pocketsphinx", "matplotlib"):
        pytest.importorskip(package)
    out_dir = eval_files["root"] / "out"
    code, out, err = _run(
        capsys, "eval", eval_files["manifest"], "--model", eval_files["model"], "--num-quantizers", "1,8,64",
        "--baseline", "opus:6", "--baseline", "codec2:3200", "--out", out_dir,
    )
    assert code == 0, err
    assert "skipping num_quantizers 64" in err
    results = json.loads((out_dir / "results.json").read_text())
    names = [s["name"] for s in results["systems"]]
    expected = ["CAT q1", "CAT q8"]
    for spec in ("opus:6", "codec2:3200"):
        ok, why = Baseline.parse(spec).available()
        if ok:
            expected.append(spec)
        else:
            assert why in results["notes"]
    assert names == expected
    assert results["num_items"] == 2 and [i["id"] for i in results["items"]] == ["utt0", "utt1"]
    have_speaker = _importable("resemblyzer")
    for s in results["systems"]:
        assert len(s["items"]) == 2
        for key in ("stoi", "si_sdr", "mel") + (("sim",) if have_speaker else ()):
            assert math.isfinite(s["metrics"][key]["mean"]), (s["name"], key)
        assert s["metrics"]["pesq_wb"]["valid"] + s["metrics"]["pesq_wb"]["failed"] == 2
        assert s["wer"] is not None and s["wer"]["words"] == 6 and s["wer"]["wer"] >= 0
        assert s["wer"]["chars"] > 6 and s["wer"]["cer"] >= 0  # the same transcripts' characters, spaces included
        assert math.isfinite(s["real_kbps"]) and s["real_kbps"] > 0
    cat1 = results["systems"][0]
    # 1.5 s = 75 frames of 320 samples; 6 bits per code
    assert cat1["real_kbps"] == pytest.approx(2 * 75 * 1 * 6 / 3.0 / 1000)
    assert cat1["nominal_kbps"] == pytest.approx(0.3)
    assert results["original"]["wer"]["words"] == 6
    md = (out_dir / "results.md").read_text()
    assert "| system" in md and "PESQ-WB" in md and "PESQ-NB" in md and "SIM" in md and "WER" in md
    header = next(line for line in md.splitlines() if line.startswith("| system"))
    assert header.split("|")[-3].strip() == "WER" and header.split("|")[-2].strip() == "CER"
    assert "original (16-bit PCM)" in md
    assert "| system" in out  # the table is printed too
    assert (out_dir / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def test_evaluate_counts_metric_failures(tmp_path, eval_files):
    """A silent item: PESQ raises on it, so it is NaN there, counted, and left out of the mean."""
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    from catcodec.evaluation import evaluate, markdown_table, write_report

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR, dtype=np.float32), SR)
    model = CATModel.from_pretrained(eval_files["model"]).eval()
    notes = []
    results = evaluate(
        model, [eval_files["root"] / "audio" / "utt0.wav", dict(audio=str(silent), text=None), tmp_path / "missing.wav"],
        num_quantizers=[2], baselines=[], compute_wer=False, compute_speaker=False, progress=False, on_note=notes.append,
    )
    assert results["num_items"] == 2 and len(results["skipped_items"]) == 1
    (cat,) = results["systems"]
    assert cat["metrics"]["pesq_wb"] == dict(mean=cat["items"][0]["pesq_wb"], valid=1, failed=1)
    assert "pesq_wb" in cat["items"][1]["failures"] and math.isnan(cat["items"][1]["pesq_wb"])
    assert "sim" not in cat["metrics"] and cat["wer"] is None
    assert any("PESQ-WB failed on 1 of 2" in n for n in notes) and any("missing.wav" in n for n in notes)
    assert "[1/2]" in markdown_table(results)
    paths = write_report(results, tmp_path / "out")
    saved = json.loads(paths["json"].read_text())
    assert saved["systems"][0]["items"][1]["pesq_wb"] is None  # NaN is written as null


def test_eval_cli_bad_inputs(capsys, eval_files):
    model = eval_files["model"]
    code, _, err = _run(capsys, "eval", eval_files["manifest"], "--model", model, "--baseline", "mp3:128")
    assert code == 2 and err.strip().splitlines()[-1].startswith("catcodec: error: --baseline: unknown baseline codec")
    code, _, err = _run(capsys, "eval", eval_files["root"] / "missing.jsonl", "--model", model)
    assert code == 2 and "catcodec: error: cannot read manifest" in err
    bad = eval_files["root"] / "bad.jsonl"
    bad.write_text('{"audio": "x.wav"}\n')
    code, _, err = _run(capsys, "eval", bad, "--model", model)
    assert code == 2 and "catcodec: error: bad manifest:" in err and "missing field" in err
    code, _, err = _run(capsys, "eval", eval_files["manifest"], "--model", model, "--num-quantizers", "64", "--no-baselines")
    assert code == 2 and "no usable --num-quantizers" in err
    not_dir = eval_files["root"] / "file.txt"
    not_dir.write_text("x")
    code, _, err = _run(capsys, "eval", eval_files["manifest"], "--model", model, "--out", not_dir)
    assert code == 2 and "is not a folder" in err
