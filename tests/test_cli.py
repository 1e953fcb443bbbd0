"""Tests for the `catcodec` command line (catcodec.cli), run in-process on a tiny saved model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from catcodec import CATConfig, CATModel
from catcodec.audio import load_audio
from catcodec.cli import EXAMPLE_AUDIO, main
from catcodec.streaming import StreamingDecoder, StreamingEncoder

SR = 16000
HOP = 320  # patch 40 * 2**3
PCM16_ATOL = 2.5 / 32768  # one 16-bit PCM step (rounding) plus float slack

from helpers.tiny import TINY  # noqa: E402  (the shared tiny configuration)


def _save_model(folder: Path, **overrides) -> Path:
    torch.manual_seed(0)
    CATModel(CATConfig(**{**TINY, **overrides})).save_pretrained(folder)
    return folder


pytestmark = pytest.mark.usefixtures("single_thread")  # conftest: tiny models run best on one thread


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny model, a second tiny model with another config, and a 1.3 s stereo chirp at 22.05 kHz."""
    root = tmp_path_factory.mktemp("cli")
    rate = 22050
    t = np.arange(int(1.3 * rate)) / rate
    chirp = 0.4 * np.sin(2 * np.pi * (200 * t + 800 * t**2))
    audio = root / "chirp.wav"
    sf.write(audio, np.stack([chirp, 0.5 * chirp], axis=1).astype(np.float32), rate)
    return dict(
        root=root,
        model=_save_model(root / "tiny"),
        other=_save_model(root / "tiny_other", codebook_size=32),
        audio=audio,
    )


@pytest.fixture(scope="module")
def model(files) -> CATModel:
    return CATModel.from_pretrained(files["model"]).eval()


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _ok(capsys, *argv) -> tuple[str, str]:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "Traceback" not in err
    return out, err


def _fails(capsys, expected: str, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("catcodec: error:")]
    assert len(lines) == 1, err
    assert expected in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------------------------- encode


def test_encode_writes_codes_file(files, model, capsys, tmp_path):
    out, err = _ok(capsys, "encode", files["audio"], tmp_path / "c.npz", "--model", files["model"], "--num-quantizers", 4)
    assert "weights:" in err and "WARNING" not in err  # a saved model is not flagged as untrained

    wav = load_audio(files["audio"], SR)  # resampled 22.05 -> 16 kHz, down-mixed
    with np.load(tmp_path / "c.npz") as data:
        assert set(data.files) == {"codes", "num_samples", "sampling_rate", "num_quantizers", "model_name", "config_hash",
                                   "format_version", "weights_id"}
        codes = data["codes"]
        assert codes.dtype == np.int16
        assert int(data["num_samples"]) == wav.shape[-1] == round(1.3 * SR)
        assert codes.shape == (4, math.ceil(wav.shape[-1] / HOP))
        assert int(data["num_quantizers"]) == 4
        assert int(data["sampling_rate"]) == SR
        assert str(data["config_hash"]) == model.config.architecture_hash()
        assert str(data["model_name"]) == str(files["model"])
        assert int(data["format_version"]) == 2
        assert str(data["weights_id"]) == model.codes_fingerprint()
    with torch.inference_mode():
        expected = model.encode(torch.from_numpy(wav)[None, None], num_quantizers=4).audio_codes[0].numpy()
    np.testing.assert_array_equal(codes, expected)
    frames = codes.shape[1]
    assert f"{frames} frames" in out and "1.2 kbps" in out and "bytes" in out  # 50 frames/s * 4 * 6 bits


# ----------------------------------------------------------------------------------------------- decode


def test_decode_restores_length_and_rate(files, model, capsys, tmp_path):
    _ok(capsys, "encode", files["audio"], tmp_path / "c.npz", "--model", files["model"], "--num-quantizers", 3)
    for ext in ("wav", "flac", "ogg"):
        _ok(capsys, "decode", tmp_path / "c.npz", tmp_path / f"d.{ext}", "--model", files["model"])
        info = sf.info(tmp_path / f"d.{ext}")
        assert info.samplerate == SR
        assert info.frames == round(1.3 * SR)
    with np.load(tmp_path / "c.npz") as data:
        codes = torch.from_numpy(data["codes"].astype(np.int64))[None]
    with torch.inference_mode():
        expected = model.decode(codes).audio_values.reshape(-1)[: round(1.3 * SR)].clamp(-1, 1).numpy()
    decoded, _ = sf.read(tmp_path / "d.wav", dtype="float32")
    np.testing.assert_allclose(decoded, expected, atol=PCM16_ATOL)


def test_decode_refuses_codes_of_another_model(files, capsys, tmp_path):
    _ok(capsys, "encode", files["audio"], tmp_path / "c.npz", "--model", files["other"])
    line = _fails(capsys, "was made by model", "decode", tmp_path / "c.npz", tmp_path / "d.wav", "--model", files["model"])
    assert str(files["other"]) in line and str(files["model"]) in line
    assert f"pass --model {files['other']}" in line
    assert not (tmp_path / "d.wav").exists()


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "file not found"),
        (b"", "it is empty"),
        (b"RIFF\x00\x00 this is not a zip", "not an .npz"),
        ("truncated", "not a catcodec codes file"),
        ("foreign", "missing codes"),
    ],
    ids=["missing", "empty", "not-zip", "truncated", "foreign-npz"],
)
def test_decode_bad_codes_files(files, capsys, tmp_path, content, expected):
    path = tmp_path / "bad.npz"
    if content == "truncated":
        _ok(capsys, "encode", files["audio"], tmp_path / "c.npz", "--model", files["model"])
        path.write_bytes((tmp_path / "c.npz").read_bytes()[:300])
    elif content == "foreign":
        np.savez(path, a=np.zeros(3))
    elif content is not None:
        path.write_bytes(content)
    _fails(capsys, expected, "decode", path, tmp_path / "d.wav", "--model", files["model"])


# ----------------------------------------------------------------------------------------------- reconstruct


def test_reconstruct_stream_matches_offline(files, model, capsys, tmp_path):
    out_offline, _ = _ok(capsys, "reconstruct", files["audio"], tmp_path / "off.wav", "--model", files["model"], "--num-quantizers", 5)
    out_stream, _ = _ok(capsys, "reconstruct", files["audio"], tmp_path / "str.wav", "--model", files["model"], "--num-quantizers", 5, "--stream")
    for out in (out_offline, out_stream):
        assert "1.5 kbps" in out and "mel distance:" in out and "SI-SDR:" in out
    assert "streamed" in out_stream
    a, rate_a = sf.read(tmp_path / "off.wav", dtype="float32")
    b, rate_b = sf.read(tmp_path / "str.wav", dtype="float32")
    assert rate_a == rate_b == SR and a.shape == b.shape == (round(1.3 * SR),)
    np.testing.assert_allclose(a, b, atol=1e-4 + PCM16_ATOL)

    # Same check before PCM quantization, through the API: codes identical, audio within 1e-4.
    wav = torch.from_numpy(load_audio(files["audio"], SR))[None, None]
    with torch.inference_mode():
        offline_codes = model.encode(wav, num_quantizers=5).audio_codes
        offline_audio = model.decode(offline_codes).audio_values
        codes, audio = [], []
        with StreamingEncoder(model, num_quantizers=5) as enc, StreamingDecoder(model) as dec:
            for start in range(0, wav.shape[-1], HOP):
                codes.append(enc.push(wav[..., start : start + HOP]))
                audio.append(dec.push(codes[-1]))
            codes.append(enc.flush())
            audio.append(dec.push(codes[-1]))
    torch.testing.assert_close(torch.cat(codes, -1), offline_codes, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat(audio, -1), offline_audio, rtol=0, atol=1e-4)


# ----------------------------------------------------------------------------------------------- bad inputs


def _bad_audio(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        path.write_bytes(b"RIFF\x24\x00\x00\x00WAVEgarbage" * 10)
    elif kind == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), SR)
    elif kind == "nan":
        sf.write(path, np.full(SR // 2, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    return path


@pytest.mark.parametrize(
    "kind, expected",
    [("missing", "file not found"), ("corrupt", "not a readable audio file"), ("empty", "is empty"), ("nan", "NaN")],
)
@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_bad_audio_input(files, capsys, tmp_path, kind, expected, command):
    path = _bad_audio(tmp_path, kind)
    out = tmp_path / ("c.npz" if command == "encode" else "r.wav")
    line = _fails(capsys, expected, command, path, out, "--model", files["model"])
    assert str(path) in line
    assert not out.exists()


@pytest.mark.parametrize("n", [0, 9, -1])
@pytest.mark.parametrize("command", ["encode", "reconstruct"])
def test_num_quantizers_out_of_range(files, capsys, tmp_path, n, command):
    out = tmp_path / ("c.npz" if command == "encode" else "r.wav")
    line = _fails(capsys, "out of range", command, files["audio"], out, "--model", files["model"], f"--num-quantizers={n}")
    assert "1..8" in line


@pytest.mark.parametrize("command", ["encode", "info", "roundtrip"])
def test_unknown_model(capsys, tmp_path, command):
    argv = {"encode": ["encode", tmp_path / "x.wav", tmp_path / "c.npz"], "info": ["info"], "roundtrip": ["roundtrip", "--out", tmp_path]}
    line = _fails(capsys, "neither a preset", *argv[command], "--model", "no-such-model")
    assert "cat-small-16k" in line  # lists the choices


def test_unsupported_output_extension(files, capsys, tmp_path):
    _fails(capsys, "unsupported extension", "reconstruct", files["audio"], tmp_path / "r.mp3", "--model", files["model"])


def test_usage_errors_keep_argparse_behaviour(capsys):
    code, _, err = run(capsys, "encode")
    assert code == 2 and "usage:" in err and "Traceback" not in err
    code, _, err = run(capsys, "roundtrip", "--num-quantizers", "1,x")
    assert code == 2 and "comma-separated integers" in err
    code, _, err = run(capsys, "info", "--threads", "0")
    assert code == 2 and "positive integer" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "roundtrip" in out


# ----------------------------------------------------------------------------------------------- info


def test_info_json(files, model, capsys):
    previous = torch.get_num_threads()
    try:
        out, _ = _ok(capsys, "info", files["model"], "--json", "--threads", "2")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    info = json.loads(out)
    params = info["parameters"]
    assert params["total"] == sum(p.numel() for p in model.parameters())
    for part in ("encoder", "quantizer", "decoder"):
        assert params[part] == sum(p.numel() for p in getattr(model, part).parameters())
    assert params["encoder"] + params["quantizer"] + params["decoder"] == params["total"]
    assert info["sampling_rate"] == SR and info["hop_length"] == HOP and info["frame_rate"] == 50
    assert info["num_quantizers"] == 8 and info["codebook_size"] == 64
    assert info["bitrate_bps"] == {"min": 300, "max": 2400, "per_quantizer": 300}
    assert [s["dim"] for s in info["stages"]] == TINY["stage_dims"]
    assert info["config_hash"] == model.config.architecture_hash()
    assert info["untrained"] is False

    text, _ = _ok(capsys, "info", "--model", files["model"])
    assert model.config.architecture_hash() in text and f"{params['total']:,}" in text and "0.3..2.4 kbps" in text


def test_info_untrained_preset_warns(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("catcodec.presets.PRETRAINED_DIR", tmp_path)  # as if no weights were bundled
    out, err = _ok(capsys, "info", "cat-small-16k")
    assert "WARNING: the weights of 'cat-small-16k' are untrained (random initialisation): output is noise, not speech." in err
    assert "UNTRAINED" in out and "0.125..4 kbps" in out and "12.5 frames/s" in out


# ----------------------------------------------------------------------------------------------- roundtrip


def test_roundtrip_tiny(files, model, capsys, tmp_path):
    out_dir = tmp_path / "rt"
    out, err = _ok(capsys, "roundtrip", "--model", files["model"], "--input", files["audio"], "--out", out_dir, "--num-quantizers", "1,4,8,99")
    assert "skipping --num-quantizers 99" in err
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "original.wav", "reconstructed_q1.wav", "reconstructed_q4.wav", "reconstructed_q8.wav", "results.json",
    ]
    for p in out_dir.glob("*.wav"):
        info = sf.info(p)
        assert info.samplerate == SR and info.frames == round(1.3 * SR)

    summary = json.loads((out_dir / "results.json").read_text())
    assert summary["dropped_num_quantizers"] == [99]
    rows = summary["results"]
    assert [r["num_quantizers"] for r in rows] == [1, 4, 8]
    frames = math.ceil(round(1.3 * SR) / HOP)
    for r in rows:
        n = r["num_quantizers"]
        assert r["kbps"] == pytest.approx(0.3 * n)
        assert r["real_kbps"] == pytest.approx(frames * n * 6 / 1.3 / 1000)
        assert math.isfinite(r["mel_distance"]) and math.isfinite(r["si_sdr_db"])
        assert Path(r["file"]).name == f"reconstructed_q{n}.wav"

    # The printed table: a header, a rule and one row per kept bitrate, all the same width.
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 5 and "num_quantizers" in table[0] and "SI-SDR" in table[0]
    assert len({len(line) for line in table}) == 1
    assert "reconstructed_q4.wav" in table[3]

    # Each reconstruction is what `encode -n N` + `decode` gives.
    _ok(capsys, "encode", files["audio"], tmp_path / "c4.npz", "--model", files["model"], "--num-quantizers", 4)
    _ok(capsys, "decode", tmp_path / "c4.npz", tmp_path / "d4.wav", "--model", files["model"])
    a, _ = sf.read(out_dir / "reconstructed_q4.wav", dtype="float32")
    b, _ = sf.read(tmp_path / "d4.wav", dtype="float32")
    np.testing.assert_allclose(a, b, atol=PCM16_ATOL)


def test_roundtrip_bundled_example(files, capsys, tmp_path):
    out, _ = _ok(capsys, "roundtrip", "--model", files["model"], "--out", tmp_path / "rt", "--num-quantizers", "2")
    assert EXAMPLE_AUDIO.name in out
    info, source = sf.info(tmp_path / "rt" / "original.wav"), sf.info(EXAMPLE_AUDIO)
    assert source.samplerate == SR and abs(source.duration - 6.0) < 0.05  # 16 kHz speech, about 6 s
    assert info.samplerate == SR and info.frames == source.frames
    assert (tmp_path / "rt" / "reconstructed_q2.wav").is_file()


def test_roundtrip_rejects_zero(files, capsys, tmp_path):
    _fails(capsys, "1..8", "roundtrip", "--model", files["model"], "--out", tmp_path, "--num-quantizers", "0,1")


# ----------------------------------------------------------------------------------------------- console script


def test_console_script_help():
    script = Path(sys.executable).parent / "catcodec"
    assert script.is_file(), f"console script not installed at {script}"
    proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("roundtrip", "encode", "decode", "reconstruct", "info"):
        assert command in proc.stdout


# ----------------------------------------------------------------------------------------------- tokenize


def test_tokenize_caches_codes_equal_to_encode(files, model, capsys, tmp_path):
    import json

    import soundfile as sf

    from catcodec.codes_file import read_codes

    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i, seconds in enumerate([0.5, 1.3, 0.2]):
        path = folder / f"c{i}.wav"
        sf.write(path, (0.2 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000, subtype="FLOAT")
        rows.append({"audio": path.name, "text": f"clip {i}", "speaker": "s", "sample_rate": 16000, "duration": seconds})
    (folder / "bad.wav").write_bytes(b"junk")
    rows.append({"audio": "bad.wav", "text": None, "speaker": "s", "sample_rate": 16000, "duration": 1.0})
    manifest = folder / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, err = _ok(capsys, "tokenize", str(manifest), "--model", files["model"], "--num-quantizers", "3", "--batch-size", "2")
    assert "3 clips encoded, 0 reused, 1 unreadable" in out
    lines = [json.loads(l) for l in (folder / "m.codes.jsonl").read_text().splitlines()]
    assert [l["text"] for l in lines] == ["clip 0", "clip 1", "clip 2"]
    for line in lines:
        cached = read_codes(folder / line["codes"])
        wav, _ = sf.read(folder / line["audio"], dtype="float32")
        alone = model.encode(torch.from_numpy(wav)[None, None], num_quantizers=3).audio_codes[0]
        assert cached.codes.shape == (3, line["num_frames"])
        assert np.array_equal(cached.codes, alone.numpy())  # batched with padding == one by one
    out, _ = _ok(capsys, "tokenize", str(manifest), "--model", files["model"], "--num-quantizers", "3")
    assert "0 clips encoded, 3 reused" in out
    # other weights of the same architecture (another checkpoint): the cached codes mean nothing to it
    torch.manual_seed(5)
    type(model)(model.config).save_pretrained(tmp_path / "other")
    out, _ = _ok(capsys, "tokenize", str(manifest), "--model", str(tmp_path / "other"), "--num-quantizers", "3")
    assert "3 clips encoded, 0 reused" in out
