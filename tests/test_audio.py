"""Tests for catcodec.audio: loading, down-mixing, resampling, validation and atomic saving."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from catcodec import audio
from catcodec.audio import (
    SUPPORTED_EXTENSIONS,
    AudioError,
    load_audio,
    load_audio_with_rate,
    save_audio,
    validate_waveform,
)


def _sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _raises(match: str, func, *args, **kwargs) -> str:
    """Assert func raises AudioError whose single-line message contains ``match``."""
    with pytest.raises(AudioError) as info:
        func(*args, **kwargs)
    msg = str(info.value)
    assert match in msg, msg
    assert "\n" not in msg and "\r" not in msg, msg
    return msg


# --------------------------------------------------------------------------- loading


def test_mono_float_wav_exact(tmp_path: Path) -> None:
    x = _sine(300, 16000, 0.25)
    path = tmp_path / "mono.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    wav = load_audio(path, 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1
    np.testing.assert_array_equal(wav, x)
    wav2, rate = load_audio_with_rate(str(path))
    assert rate == 16000
    np.testing.assert_array_equal(wav2, x)


def test_stereo_downmix_is_channel_mean(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.uniform(-0.9, 0.9, 4000).astype(np.float32)
    b = _sine(440, 16000, 0.25, amp=0.7)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([a, b], axis=1), 16000, subtype="FLOAT")
    wav, rate = load_audio_with_rate(path)
    assert rate == 16000 and wav.shape == (4000,) and wav.dtype == np.float32
    np.testing.assert_allclose(wav, (a + b) / 2, atol=1e-6)


def test_multichannel_pcm16_downmix(tmp_path: Path) -> None:
    chans = np.stack([_sine(f, 8000, 0.2, amp=0.3) for f in (200, 500, 900)], axis=1)
    path = tmp_path / "three.wav"
    sf.write(path, chans, 8000, subtype="PCM_16")
    wav = load_audio(path, 8000)
    np.testing.assert_allclose(wav, chans.mean(axis=1), atol=1e-4)


def test_resample_48k_to_16k_keeps_pitch(tmp_path: Path) -> None:
    n_in = 48000
    path = tmp_path / "sine48k.wav"
    sf.write(path, _sine(440, 48000, 1.0), 48000, subtype="FLOAT")
    wav = load_audio(path, 16000)
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - n_in * 16000 / 48000) <= 1
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    peak_hz = np.argmax(spectrum) * 16000 / len(wav)
    assert abs(peak_hz - 440) <= 1.0
    # amplitude is preserved too (soxr_hq is flat well below Nyquist)
    assert abs(np.abs(wav[200:-200]).max() - 0.5) < 0.01


def test_flac_round_trip(tmp_path: Path) -> None:
    x = _sine(440, 16000, 0.5)
    path = tmp_path / "a.flac"
    save_audio(path, x, 16000)
    assert sf.info(path).format == "FLAC" and sf.info(path).subtype == "PCM_16"
    wav = load_audio(path, 16000)
    assert wav.shape == x.shape
    np.testing.assert_allclose(wav, x, atol=1 / 32768 + 1e-6)


def test_wav_round_trip_pcm16(tmp_path: Path) -> None:
    x = _sine(1000, 22050, 0.3, amp=0.8)
    path = tmp_path / "a.WAV"  # extension matching is case-insensitive
    save_audio(path, x, 22050)
    info = sf.info(path)
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 22050, 1)
    wav, rate = load_audio_with_rate(path)
    assert rate == 22050
    np.testing.assert_allclose(wav, x, atol=1 / 32768 + 1e-6)


def test_ogg_round_trip_is_close(tmp_path: Path) -> None:
    x = _sine(440, 16000, 1.0)
    path = tmp_path / "a.ogg"
    save_audio(path, x, 16000)
    assert sf.info(path).subtype == "VORBIS"
    wav = load_audio(path, 16000)
    assert abs(len(wav) - len(x)) < 300
    n = min(len(wav), len(x))
    assert np.corrcoef(wav[:n], x[:n])[0, 1] > 0.9


# --------------------------------------------------------------------------- load errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    msg = _raises("file not found", load_audio, path, 16000)
    assert msg == f"cannot read '{path}': file not found"


def test_directory(tmp_path: Path) -> None:
    _raises("is a directory", load_audio, tmp_path, 16000)


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    path = tmp_path / "fake.wav"
    path.write_text("this is not audio\nat all\n")
    msg = _raises("is not a readable audio file", load_audio, path, 16000)
    assert msg.startswith(f"'{path}' is not a readable audio file (wav, flac, ogg ...): ")
    assert len(msg.split(": ", 1)[1]) > 0


def test_truncated_header(tmp_path: Path) -> None:
    good = tmp_path / "good.wav"
    sf.write(good, _sine(440, 16000, 0.1), 16000)
    bad = tmp_path / "cut.wav"
    bad.write_bytes(good.read_bytes()[:20])
    _raises("is not a readable audio file", load_audio, bad, 16000)


def test_zero_length_wav(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    msg = _raises("is empty (0 samples)", load_audio, path, 16000)
    assert msg == f"'{path}' is empty (0 samples)"


def test_nan_wav(tmp_path: Path) -> None:
    x = _sine(440, 16000, 0.1)
    x[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    msg = _raises("contains NaN or infinite samples", load_audio, path, 16000)
    assert msg == f"'{path}' contains NaN or infinite samples"


def test_inf_wav(tmp_path: Path) -> None:
    x = _sine(440, 16000, 0.1)
    x[7] = -np.inf
    path = tmp_path / "inf.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    _raises("contains NaN or infinite samples", load_audio_with_rate, path)


def test_too_long_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(16000, dtype=np.float32), 16000)

    def no_read(*args, **kwargs):
        raise AssertionError("file was decoded despite being too long")

    monkeypatch.setattr(audio.sf, "read", no_read)
    msg = _raises("is too long", load_audio, path, 16000, max_seconds=0.5)
    assert msg == f"'{path}' is too long: 1.0 s > max 0.5 s"


def test_max_seconds_none_and_boundary(tmp_path: Path) -> None:
    path = tmp_path / "one_second.wav"
    sf.write(path, np.full(16000, 0.25, dtype=np.float32), 16000, subtype="FLOAT")
    assert load_audio(path, 16000, max_seconds=1.0).shape == (16000,)
    assert load_audio(path, 16000, max_seconds=None).shape == (16000,)
    _raises("1.000 s > max 0.999 s", load_audio, path, 16000, max_seconds=0.999)


def test_bad_sampling_rate_argument(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(100, dtype=np.float32), 16000)
    with pytest.raises(ValueError):
        load_audio(path, 0)


# --------------------------------------------------------------------------- validate_waveform


def test_validate_waveform() -> None:
    validate_waveform(np.zeros(10, dtype=np.float32))
    validate_waveform(torch.zeros(1, 1, 10))
    validate_waveform(np.array([1, 2, 3], dtype=np.int16))
    _raises("'input' is empty (0 samples)", validate_waveform, np.zeros(0))
    _raises("'clip' is empty (0 samples)", validate_waveform, torch.zeros(1, 0), name="clip")
    _raises("'input' contains NaN or infinite samples", validate_waveform, np.array([0.0, np.nan]))
    _raises(
        "'t' contains NaN or infinite samples",
        validate_waveform,
        torch.tensor([[0.0, float("inf")]]),
        name="t",
    )


# --------------------------------------------------------------------------- saving


def test_save_torch_1_1_t(tmp_path: Path) -> None:
    x = torch.from_numpy(_sine(440, 16000, 0.2)).reshape(1, 1, -1)
    path = tmp_path / "nested" / "deeper" / "t.wav"  # parent folders are created
    save_audio(path, x, 16000)
    wav, rate = load_audio_with_rate(path)
    assert rate == 16000 and wav.shape == (x.shape[-1],)
    np.testing.assert_allclose(wav, x.reshape(-1).numpy(), atol=1 / 32768 + 1e-6)


def test_save_accepts_1_t_and_requires_grad(tmp_path: Path) -> None:
    x = torch.full((1, 800), 0.25, dtype=torch.float64, requires_grad=True)
    path = tmp_path / "g.flac"
    save_audio(path, x, 8000)
    np.testing.assert_allclose(load_audio(path, 8000), 0.25, atol=1e-4)


def test_save_rejects_bad_shapes_and_values(tmp_path: Path) -> None:
    _raises("expected mono audio", save_audio, tmp_path / "s.wav", np.zeros((2, 100)), 16000)
    _raises("expected mono audio", save_audio, tmp_path / "s.wav", torch.zeros(1, 2, 100), 16000)
    _raises("contains NaN", save_audio, tmp_path / "s.wav", np.array([0.0, np.nan]), 16000)
    assert list(tmp_path.iterdir()) == []


def test_save_clips(tmp_path: Path) -> None:
    x = np.array([2.0, -3.0, 0.5, 1.5] * 100, dtype=np.float32)
    path = tmp_path / "clip.wav"
    save_audio(path, x, 16000)
    wav = load_audio(path, 16000)
    np.testing.assert_allclose(wav[:4], [1.0, -1.0, 0.5, 1.0], atol=1e-4)
    assert wav.max() <= 1.0 and wav.min() >= -1.0
    np.testing.assert_array_equal(x[:4], [2.0, -3.0, 0.5, 1.5])  # caller's array untouched


def test_save_is_atomic_no_temp_files(tmp_path: Path) -> None:
    for ext in SUPPORTED_EXTENSIONS:
        save_audio(tmp_path / f"out{ext}", _sine(440, 16000, 0.1), 16000)
    save_audio(tmp_path / "out.wav", _sine(220, 16000, 0.1), 16000)  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"out{e}" for e in SUPPORTED_EXTENSIONS)


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "keep.wav"
    save_audio(path, np.full(400, 0.5, dtype=np.float32), 16000)
    before = path.read_bytes()

    real_write = sf.write

    def crashing_write(file, data, *args, **kwargs):
        real_write(file, data[: len(data) // 2], *args, **kwargs)  # partial output, then crash
        raise KeyboardInterrupt

    monkeypatch.setattr(audio.sf, "write", crashing_write)
    with pytest.raises(KeyboardInterrupt):
        save_audio(path, np.zeros(400, dtype=np.float32), 16000)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]
    assert path.read_bytes() == before


def test_save_file_permissions_follow_umask(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions only")
    old = os.umask(0o022)
    try:
        save_audio(tmp_path / "p.wav", np.zeros(10, dtype=np.float32), 16000)
    finally:
        os.umask(old)
    assert (tmp_path / "p.wav").stat().st_mode & 0o777 == 0o644


def test_save_unsupported_extension(tmp_path: Path) -> None:
    x = np.zeros(100, dtype=np.float32)
    _raises("unsupported extension '.mp4'", save_audio, tmp_path / "x.mp4", x, 16000)
    _raises("unsupported extension", save_audio, tmp_path / "noext", x, 16000)
    assert list(tmp_path.iterdir()) == []


def test_supported_extensions() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {".wav", ".flac", ".ogg"}
