"""LPC re-voicing (training.data.revoice) on a generated vowel: pitch and formants move by the factors asked,
length and loudness stay; the recursion, bad input, manifests and the CLI."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.linalg import solve_toeplitz
from scipy.signal import lfilter

from catcodec.pitch import estimate_pitch
from training.data.manifest import ManifestEntry, read_manifest, write_manifest
from training.data.revoice import Variant, levinson, main, revoice, revoice_manifest, speaker_name

RATE = 16000


def _vowel(f0: float = 120.0, formants=(700.0, 1200.0), seconds: float = 1.0) -> np.ndarray:
    """A pulse train at f0 through two resonators: a vowel with known pitch and formants."""
    n = int(RATE * seconds)
    x = np.zeros(n)
    x[:: int(RATE / f0)] = 1.0
    for f in formants:
        r, w = np.exp(-np.pi * 80 / RATE), 2 * np.pi * f / RATE
        x = lfilter([1.0], [1.0, -2 * r * np.cos(w), r * r], x)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _median_f0(wav: np.ndarray) -> float:
    track = estimate_pitch(torch.from_numpy(wav)[None], RATE, 80)
    return float(track.f0[0][track.voiced[0]].median())


def _lowest_peak_hz(wav: np.ndarray) -> float:
    """Frequency of the strongest LPC envelope peak: where the first formant lies."""
    x = wav[2000:6000].astype(np.float64) * np.hanning(4000)
    r = np.correlate(x, x, "full")[x.size - 1 : x.size + 12][None]
    a, _ = levinson(r, 12)
    envelope = 1.0 / np.abs(np.fft.rfft(a[0], 4096))
    return float(np.argmax(envelope) * RATE / 4096)


def test_levinson_solves_the_normal_equations_for_every_frame():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((4, 400))
    r = np.stack([np.correlate(f, f, "full")[399:420] for f in frames])
    a, err = levinson(r, 20)
    assert np.allclose(a[:, 0], 1.0)
    for i in range(4):
        assert np.allclose(a[i, 1:], solve_toeplitz(r[i, :20], -r[i, 1:21]), atol=1e-10)
        assert err[i] == pytest.approx(r[i, 0] + a[i, 1:] @ r[i, 1:21])  # the prediction error power


def test_pitch_and_formants_move_by_their_factors_length_and_loudness_stay():
    vowel = _vowel()
    same = revoice(vowel, RATE, Variant(1.0, 1.0))
    assert same.shape == vowel.shape and same.dtype == np.float32 and np.isfinite(same).all()
    assert np.sqrt(np.mean(same**2)) == pytest.approx(np.sqrt(np.mean(vowel**2)), rel=1e-3)
    assert _median_f0(same) == pytest.approx(_median_f0(vowel), rel=0.03)
    higher = revoice(vowel, RATE, Variant(1.5, 1.0))
    assert _median_f0(higher) == pytest.approx(1.5 * _median_f0(vowel), rel=0.03)
    assert _lowest_peak_hz(same) == pytest.approx(700, rel=0.1)
    assert _lowest_peak_hz(revoice(vowel, RATE, Variant(1.0, 1.25))) == pytest.approx(1.25 * 700, rel=0.1)


def test_residual_source_keeps_the_clip_and_moves_only_the_formants():
    vowel = _vowel(f0=110.0)
    same = revoice(vowel, RATE, Variant(1.0, 1.0, "residual"))
    # whitened by its own envelope and coloured by it again: the clip itself, sample for sample
    core = slice(800, -800)
    assert np.corrcoef(same[core], vowel[core])[0, 1] > 0.99
    moved = revoice(vowel, RATE, Variant(1.0, 1.2, "residual"))
    assert _lowest_peak_hz(moved) == pytest.approx(1.2 * 700, rel=0.1)
    assert _median_f0(moved) == pytest.approx(_median_f0(vowel), rel=0.03)  # its own pulses: the pitch stays
    noise = np.random.default_rng(2).standard_normal(4000).astype(np.float32) * 0.1  # no seed needed: no noise drawn
    assert np.array_equal(revoice(noise, RATE, Variant(1.0, 0.9, "residual"), seed=1),
                          revoice(noise, RATE, Variant(1.0, 0.9, "residual"), seed=2))


def test_smoothing_slurs_a_formant_jump():
    """A vowel whose first formant jumps from 500 to 900 Hz halfway: smoothed over 100 ms, the 40 ms after the
    jump still hold much of the old formant; unsmoothed, little."""
    a, b = _vowel(formants=(500.0, 1500.0), seconds=0.5), _vowel(formants=(900.0, 1500.0), seconds=0.5)
    jump = np.concatenate([a, b])

    def old_over_new(wav):
        x = wav[8160:8800].astype(np.float64) * np.hanning(640)
        spectrum = np.abs(np.fft.rfft(x, 4096)) ** 2
        band = lambda f: spectrum[int((f - 100) * 4096 / RATE) : int((f + 100) * 4096 / RATE)].sum()
        return band(500.0) / band(900.0)

    sharp = old_over_new(revoice(jump, RATE, Variant(1.0, 1.0)))
    slurred = old_over_new(revoice(jump, RATE, Variant(1.0, 1.0, "pulse", 100.0)))
    assert sharp < 0.3 and slurred > 3 * sharp


def test_silence_stays_silent_and_the_same_seed_gives_the_same_copy():
    assert np.all(revoice(np.zeros(4000, np.float32), RATE, Variant(1.2, 0.9)) == 0.0)
    noise = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    v = Variant(0.8, 1.1)
    assert np.array_equal(revoice(noise, RATE, v, seed=3), revoice(noise, RATE, v, seed=3))
    assert not np.array_equal(revoice(noise, RATE, v, seed=3), revoice(noise, RATE, v, seed=4))


def test_bad_input_and_factors_are_refused():
    with pytest.raises(ValueError, match="non-empty mono"):
        revoice(np.zeros((2, 100), np.float32), RATE, Variant(1.0, 1.0))
    with pytest.raises(ValueError, match="non-empty mono"):
        revoice(np.zeros(0, np.float32), RATE, Variant(1.0, 1.0))
    with pytest.raises(ValueError, match="NaN"):
        revoice(np.full(100, np.nan, np.float32), RATE, Variant(1.0, 1.0))
    with pytest.raises(ValueError, match="pitch factor 3 must lie"):
        Variant(3.0, 1.0)
    with pytest.raises(ValueError, match="PITCH:FORMANT"):
        Variant.parse("1.2")
    assert Variant.parse("1.2:0.9") == Variant(1.2, 0.9)
    assert Variant.parse("1:0.85:residual") == Variant(1.0, 0.85, "residual")
    assert Variant.parse("1:1:pulse:40").name == "p1f1-s40"
    assert Variant(1.0, 0.85, "residual").name == "p1f0.85-residual"
    with pytest.raises(ValueError, match="pitch factor must be 1"):
        Variant(1.2, 1.0, "residual")
    with pytest.raises(ValueError, match="source 'lpc' must be one of"):
        Variant.parse("1:1:lpc")
    with pytest.raises(ValueError, match="smoothing 500 ms"):
        Variant.parse("1:1:pulse:500")
    with pytest.raises(ValueError, match="PITCH:FORMANT"):
        Variant.parse("1:1:pulse:40:9")


def _manifest(tmp_path):
    entries = []
    for spk in ["a", "b"]:
        path = tmp_path / "src" / f"{spk}.flac"
        path.parent.mkdir(exist_ok=True)
        sf.write(str(path), _vowel(seconds=0.5), RATE, subtype="PCM_16")
        entries.append(ManifestEntry(str(path), f"text {spk}", spk, RATE, 0.5, {"tool": "t"}))
    write_manifest(entries, tmp_path / "src" / "train.jsonl")
    return tmp_path / "src" / "train.jsonl"


def test_manifest_copies_are_new_speakers_and_a_second_run_keeps_them(tmp_path):
    variants = [Variant(0.8, 1.1), Variant(1.25, 0.9)]
    out = tmp_path / "out"
    entries = revoice_manifest(_manifest(tmp_path), variants, out)
    assert [e.speaker for e in entries] == ["a~revoice-p0.8f1.1", "b~revoice-p0.8f1.1",
                                            "a~revoice-p1.25f0.9", "b~revoice-p1.25f0.9"]
    assert [e.text for e in entries] == ["text a", "text b"] * 2
    assert all(e.duration == pytest.approx(0.5) and e.extra["tool"] == "t" for e in entries)
    assert speaker_name("flite:slt:d1", Variant(1.2, 0.9)) == "flite:slt:d1~revoice-p1.2f0.9"
    mtimes = [os.stat(e.audio).st_mtime_ns for e in entries]
    again = revoice_manifest(_manifest(tmp_path), variants, out)
    assert [os.stat(e.audio).st_mtime_ns for e in again] == mtimes
    alternate = revoice_manifest(_manifest(tmp_path), variants, tmp_path / "alt", alternate=True)
    assert [e.speaker for e in alternate] == ["a~revoice-p0.8f1.1", "b~revoice-p1.25f0.9"]


def test_cli_writes_the_manifest_and_reports_errors(tmp_path, capsys):
    src = _manifest(tmp_path)
    main([str(src), "--variants", "1.1:1.05", "--out", str(tmp_path / "out")])
    written = read_manifest(tmp_path / "out" / "train.jsonl")
    assert len(written) == 2 and all(sf.info(e.audio).samplerate == RATE for e in written)
    assert "2 clips" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="revoice: error: .*PITCH:FORMANT"):
        main([str(src), "--variants", "fast", "--out", str(tmp_path / "bad")])


def test_speakers_picks_clips_by_prefix_before_alternating(tmp_path):
    src = _manifest(tmp_path)
    main([str(src), "--variants", "1:0.9:residual", "1:1.1:residual", "--alternate", "--speakers", "b", "c",
          "--out", str(tmp_path / "out")])
    written = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [(e.speaker, e.text) for e in written] == [("b~revoice-p1f0.9-residual", "text b")]
    with pytest.raises(SystemExit, match="revoice: error: .*no entries of speakers x\\*"):
        main([str(src), "--variants", "1:1", "--speakers", "x", "--out", str(tmp_path / "none")])
