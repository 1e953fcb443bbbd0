"""The Gradio demo (demo/): every endpoint called through gradio_client on a live local server with tiny models,
the error messages a visitor sees, and the `catcodec demo` subcommand."""

from __future__ import annotations

import math
import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

gr = pytest.importorskip("gradio", reason="the demo needs gradio (pip install -e '.[demo]')")
pytest.importorskip("matplotlib", reason="the demo draws its pictures with matplotlib")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from catcodec import CATConfig, CATModel  # noqa: E402
from catcodec.audio import load_audio  # noqa: E402
from catcodec.cli import main  # noqa: E402
from catcodec.codes_file import check_codes_for_model, read_codes  # noqa: E402
from demo.app import build_app, launch  # noqa: E402
from demo.codec_tab import STREAM_CHUNK_SECONDS  # noqa: E402
from demo.errors import shown_on_page  # noqa: E402
from helpers.tiny import TINY  # noqa: E402
from tts.configuration_tts import CATTTSConfig  # noqa: E402
from tts.modeling_tts import CATTTSModel  # noqa: E402
from tts.pipeline import TTSPipeline  # noqa: E402
from tts.text import CharTokenizer  # noqa: E402

SR = 16000
HOP = 320  # the tiny codec: patch 40 * 2**3, 50 frames/s
MAX_SECONDS = 4.0  # the tests' input limit (the real demo takes 120 s)
PCM16_ATOL = 2.5 / 32768  # one 16-bit PCM step (rounding) plus float slack
NEEDS_FFMPEG = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Gradio's streaming audio output needs ffmpeg")


class FakeASR:
    """Stands in for asr.pipeline.ASRPipeline (built elsewhere): says what it was called with."""

    def __call__(self, audio: np.ndarray, sampling_rate: int, num_quantizers: int, beam: int) -> str:
        return f"heard {audio.size} samples at {sampling_rate} Hz, {num_quantizers} codebooks, beam {beam}"


def _tiny_codec() -> CATModel:
    torch.manual_seed(0)
    return CATModel(CATConfig(**TINY)).float().eval()


def _tiny_tts(codec: CATModel) -> TTSPipeline:
    torch.manual_seed(0)
    model = CATTTSModel(CATTTSConfig(num_quantizers=3, codebook_size=TINY["codebook_size"], hidden_size=32, num_layers=1,
                                     num_heads=2, intermediate_size=64, depth_hidden_size=32, depth_num_layers=1,
                                     depth_num_heads=2, depth_intermediate_size=64, max_positions=256,
                                     text_vocab_size=CharTokenizer().vocab_size))
    return TTSPipeline(model, codec)


def _speechlike(seconds: float, rate: int = SR, seed: int = 0) -> np.ndarray:
    """A chirp with a little noise: loud enough not to count as silence."""
    t = np.arange(int(round(seconds * rate))) / rate
    noise = 0.05 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * np.sin(2 * np.pi * (150 * t + 400 * t**2)) + noise).astype(np.float32)


def _read(path: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    assert data.shape[1] == 1, "the demo plays mono audio"
    return data[:, 0], rate


def _png_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


@pytest.fixture(scope="module")
def models():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only add contention
    codec = _tiny_codec()
    yield codec, _tiny_tts(codec)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(models):
    """The demo with a tiny codec, a tiny TTS and a fake ASR, served on a free localhost port for this module."""
    codec, tts = models
    app = build_app(codec, tts, FakeASR(), max_seconds=MAX_SECONDS, codec_name="tiny-test-codec")
    url = launch(app, port=0, block=False, quiet=True)
    try:
        yield dict(url=url, client=Client(url, verbose=False), raw=Client(url, verbose=False, download_files=False),
                   codec=codec, tts=tts)
    finally:
        app.close()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("demo_audio")
    wav = _speechlike(1.3, 44100)
    paths = dict(stereo=root / "speech stereo.wav", mono=root / "speech.flac", silent=root / "silent.wav",
                 long=root / "ten_minutes.flac", corrupt=root / "corrupt.wav", empty=root / "empty.wav",
                 prompt=root / "prompt.wav")
    sf.write(paths["stereo"], np.stack([wav, 0.5 * wav], axis=1), 44100)
    sf.write(paths["mono"], _speechlike(1.0, SR, seed=1), SR)
    sf.write(paths["silent"], np.zeros(SR, np.float32), SR)
    sf.write(paths["long"], np.zeros(10 * 60 * 8000, np.int16), 8000, subtype="PCM_16")  # 10 minutes (tiny as FLAC)
    paths["corrupt"].write_bytes(b"RIFF\x00\x10\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    paths["empty"].write_bytes(b"")
    sf.write(paths["prompt"], _speechlike(0.6, SR, seed=2), SR)
    return paths


# ---------------------------------------------------------------------------------------------------------
# codec tab


def test_codec_endpoint(server, clips):
    codec = server["codec"]
    out = server["client"].predict(handle_file(str(clips["stereo"])), 4, False, api_name="/codec")
    original, reconstructed, spec_in, spec_out, grid, codes_path, _, status = out
    expected = load_audio(clips["stereo"], SR)  # mixed down and resampled from 44.1 kHz
    n_samples = expected.size

    wav, rate = _read(original)
    assert rate == SR and wav.size == n_samples
    np.testing.assert_allclose(wav, np.clip(expected, -1, 1), atol=PCM16_ATOL)
    rec, rate = _read(reconstructed)
    assert rate == SR and rec.size == n_samples

    codes_file = read_codes(codes_path)
    frames = math.ceil(n_samples / HOP)
    assert codes_file.codes.shape == (4, frames) and codes_file.num_samples == n_samples
    assert codes_file.model_name == "tiny-test-codec" and codes_file.sampling_rate == SR
    check_codes_for_model(codes_path, codes_file, codec, "tiny-test-codec")  # the codes are this codec's
    with torch.inference_mode():
        codes = torch.from_numpy(codes_file.codes.astype(np.int64))[None]
        decoded = codec.decode(codes).audio_values.reshape(-1)[:n_samples].numpy()
    np.testing.assert_allclose(rec, np.clip(decoded, -1, 1), atol=PCM16_ATOL)  # the page plays what the codes say

    for image in (spec_in, spec_out, grid):
        assert Path(image).is_file() and _png_size(image) == (800, 300)
    assert "4 codebooks = 1.2 kbps" in status  # 4 x 300 bit/s for the tiny codec (50 frames/s x 6 bits)
    assert f"{frames} frames x 4 codebooks = {4 * frames} tokens" in status
    assert "2 channels: mixed down to mono" in status and "resampled from 44100 Hz" in status


@NEEDS_FFMPEG
def test_codec_streaming_matches_offline(server, clips, tmp_path):
    import httpx

    codec = server["codec"]
    n_samples = load_audio(clips["mono"], SR).size
    job = server["raw"].submit(handle_file(str(clips["mono"])), 2, True, api_name="/codec")
    final = job.result(timeout=60)
    streamed = job.outputs()[:-1]  # the updates before the last: one per piece of streamed audio
    chunk = round(STREAM_CHUNK_SECONDS * SR)
    assert len(streamed) == math.ceil(n_samples / chunk) and all("streaming:" in u[-1] for u in streamed)
    assert "streaming decoder" in final[-1]

    # the reconstruction shown at the end is the concatenated stream: the input's length, and equal to the
    # offline decoding of the same codes
    rec_path, codes_path = tmp_path / "rec.wav", tmp_path / "codes.npz"
    rec_path.write_bytes(httpx.get(final[1]["url"], timeout=10).content)
    codes_path.write_bytes(httpx.get(final[5]["url"], timeout=10).content)
    rec, rate = _read(str(rec_path))
    codes = torch.from_numpy(read_codes(codes_path).codes.astype(np.int64))[None]
    with torch.inference_mode():
        offline = codec.decode(codes).audio_values.reshape(-1)[:n_samples].numpy()
    assert rate == SR and rec.size == n_samples and codes.shape == (1, 2, math.ceil(n_samples / HOP))
    np.testing.assert_allclose(rec, np.clip(offline, -1, 1), atol=PCM16_ATOL)

    # the streaming player's playlist: finished, and about the input's length in all
    stream = streamed[0][6]
    assert stream["is_stream"] and stream["url"].endswith("playlist.m3u8")
    playlist = httpx.get(stream["url"], timeout=10).text
    durations = [float(line.split(":")[1].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF")]
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST") and abs(sum(durations) - n_samples / SR) < 0.2
    aac = httpx.get(stream["url"].replace("playlist.m3u8", "playlist-file"), timeout=10).content
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "-ar", str(SR), "pipe:1"],
                         input=aac, capture_output=True, check=True).stdout
    assert 0 <= len(pcm) // 2 - n_samples <= 3 * 1024  # AAC adds priming and pads its last 1024-sample frame


@pytest.mark.parametrize(
    "clip, message",
    [
        (None, "No audio: upload a file or record"),
        ("silent", "'silent.wav' is silent (digital silence"),
        ("long", "'ten_minutes.flac' is 600.0 s long; this demo takes at most 4 s"),
        ("corrupt", "'corrupt.wav' is not an audio file the demo can read"),
        ("empty", "'empty.wav' is an empty file"),
    ],
)
def test_codec_refuses_bad_audio_with_a_message(server, clips, clip, message):
    audio = None if clip is None else handle_file(str(clips[clip]))
    with pytest.raises(AppError) as info:
        server["client"].predict(audio, 4, False, api_name="/codec")
    assert message in str(info.value) and "Traceback" not in str(info.value)


def test_codec_refuses_a_bitrate_the_model_lacks_then_keeps_serving(server, clips):
    with pytest.raises(AppError, match="greater than maximum value 8"):  # Gradio checks the slider's range
        server["client"].predict(handle_file(str(clips["mono"])), 9, False, api_name="/codec")
    out = server["client"].predict(handle_file(str(clips["mono"])), 1, False, api_name="/codec")  # after all the errors
    assert _read(out[1])[0].size == SR


@NEEDS_FFMPEG
def test_audio_libsndfile_cannot_read_goes_through_ffmpeg(tmp_path, clips):
    from demo.inputs import read_user_audio

    m4a = tmp_path / "phone recording.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(clips["stereo"]), "-c:a", "aac", str(m4a)], check=True)
    audio = read_user_audio(m4a, SR, MAX_SECONDS)
    assert audio.name == "phone recording.m4a" and abs(audio.seconds - 1.3) < 0.1  # AAC pads a little
    assert any("2 channels: mixed down" in note for note in audio.notes)


def test_handler_failures_become_one_line_on_the_page():
    def broken(x):
        raise RuntimeError("boom\nwith a second line")

    def bad_input(x):
        raise ValueError("'<b>.wav' is silent")

    def stream(x):
        yield 1
        raise KeyError("missing")

    with pytest.raises(gr.Error) as info:
        shown_on_page(broken)(1)
    assert info.value.message == "Something went wrong (RuntimeError: boom with a second line); details are in the server log."
    with pytest.raises(gr.Error) as info:
        shown_on_page(bad_input)(1)
    assert info.value.message == "'&lt;b&gt;.wav' is silent"  # shown as text, not HTML
    steps = shown_on_page(stream)(1)
    assert next(steps) == 1
    with pytest.raises(gr.Error, match="KeyError: missing"):
        next(steps)


# ---------------------------------------------------------------------------------------------------------
# TTS and ASR tabs


def test_tts_endpoint_streams_speech(server, clips):
    tts = server["tts"]
    args = ("Hello there.", None, "", 2, 0.0, 0.95, 1, 1.0)
    job = server["client"].submit(*args, api_name="/tts")
    _, spectrogram, wav_path, status = job.result(timeout=60)
    speech, rate = _read(wav_path)
    expected = tts("Hello there.", num_quantizers=2, temperature=0.0, top_p=0.95, seed=1, max_seconds=1.0)  # greedy
    assert rate == SR and 0 < speech.size <= SR and speech.size % HOP == 0 and speech.size == expected.size
    np.testing.assert_allclose(speech, np.clip(expected, -1, 1), atol=PCM16_ATOL)
    assert Path(spectrogram).is_file() and _png_size(spectrogram) == (800, 300)
    assert f"{speech.size / SR:.2f} s of speech" in status
    if shutil.which("ffmpeg"):  # streamed while generated: updates before the end
        assert any("speaking:" in u[-1] for u in job.outputs()[:-1])

    # a voice prompt with its transcript is used (other audio than without it)
    prompted = server["client"].predict("Hello there.", handle_file(str(clips["prompt"])), "a rising tone", 2, 0.0, 0.95, 1,
                                        1.0, api_name="/tts")
    other, _ = _read(prompted[2])
    assert other.size > 0 and not (other.size == speech.size and np.allclose(other, speech))


@pytest.mark.parametrize(
    "text, prompt, message",
    [("   ", None, "text is empty"), ("\u4f60\u597d", None, "unsupported characters"),
     ("Hello.", "silent", "'silent.wav' is silent")],
)
def test_tts_refuses_bad_input_with_a_message(server, clips, text, prompt, message):
    audio = None if prompt is None else handle_file(str(clips[prompt]))
    with pytest.raises(AppError) as info:
        server["client"].predict(text, audio, "", 2, 0.8, 0.95, 0, 1.0, api_name="/tts")
    assert message in str(info.value)


def test_asr_endpoint(server, clips):
    transcript, grid, count, status = server["client"].predict(handle_file(str(clips["mono"])), 3, 2, api_name="/asr")
    assert transcript == f"heard {SR} samples at {SR} Hz, 3 codebooks, beam 2"
    frames = math.ceil(SR / HOP)
    assert count == 3 * frames and f"{3 * frames} tokens" in status
    assert Path(grid).is_file() and _png_size(grid) == (800, 300)
    with pytest.raises(AppError, match="No audio"):
        server["client"].predict(None, 3, 2, api_name="/asr")


def test_tabs_without_models_say_why(models):
    codec, _ = models
    app = build_app(codec, codec_name="tiny", tts_note="No TTS weights are bundled yet.", asr_note="No ASR here.")
    texts = [c.get("props", {}).get("value") for c in app.config["components"]]
    assert any(isinstance(t, str) and "No TTS weights are bundled yet." in t for t in texts)
    assert any(isinstance(t, str) and "No ASR here." in t for t in texts)
    handlers = {fn.api_name: fn.fn for fn in app.fns.values()}
    with pytest.raises(gr.Error, match="No TTS weights"):
        list(handlers["tts"]("Hello.", None, "", 1, 0.8, 0.95, 0, 1.0))
    with pytest.raises(gr.Error, match="No ASR here"):
        handlers["asr"](None, 1, 1)


def test_pipelines_load_once_sharing_the_codec(tmp_path, clips):
    from demo.asr_tab import ASRTab
    from demo.errors import DemoError
    from demo.models import TTS_BUNDLED, load_asr, load_tts

    codec_dir = tmp_path / "codec"
    _tiny_codec().save_pretrained(codec_dir)
    codec = CATModel.from_pretrained(str(codec_dir)).eval()
    torch.manual_seed(0)
    CATTTSModel(CATTTSConfig(num_quantizers=2, codebook_size=TINY["codebook_size"], hidden_size=32, num_layers=1, num_heads=2,
                             intermediate_size=64, depth_hidden_size=32, depth_num_layers=1, depth_num_heads=2,
                             depth_intermediate_size=64, max_positions=256, codec_name=str(codec_dir),
                             text_vocab_size=CharTokenizer().vocab_size)).save_pretrained(tmp_path / "tts")
    tts, note = load_tts(str(tmp_path / "tts"), codec, str(codec_dir))
    assert note == "" and tts.codec is codec and tts.model.config.num_quantizers == 2  # one codec in memory
    from tts.pipeline import CODEC_DIR

    _tiny_codec().save_pretrained(tmp_path / "tts" / CODEC_DIR)  # a TTS that carries its codec keeps it
    tts, note = load_tts(str(tmp_path / "tts"), codec, str(codec_dir))
    assert note == "" and tts.codec is not codec and tts.codec.weights_source.endswith(CODEC_DIR)
    shutil.rmtree(tmp_path / "tts" / CODEC_DIR)
    with pytest.raises(DemoError, match="is not a TTS model folder"):
        load_tts(str(tmp_path / "nothing"), codec, str(codec_dir))
    if not (TTS_BUNDLED / "config.json").is_file():
        pipeline, note = load_tts(None, codec, str(codec_dir))
        assert pipeline is None and "No TTS weights are bundled yet" in note

    asr_config = pytest.importorskip("asr.configuration_asr", reason="the asr package has no pipeline here")
    from asr.modeling_asr import CATASRModel

    torch.manual_seed(0)
    CATASRModel(asr_config.CATASRConfig(num_quantizers=3, codebook_size=TINY["codebook_size"], hidden_size=32, num_layers=1,
                                        num_heads=2, intermediate_size=64, max_positions=512, codec_name=str(codec_dir),
                                        text_vocab_size=CharTokenizer().vocab_size)).save_pretrained(tmp_path / "asr")
    asr, note = load_asr(str(tmp_path / "asr"), codec, str(codec_dir))
    assert note == "" and asr.codec is codec
    tab = ASRTab(asr, "", codec, MAX_SECONDS)
    assert tab.top == 3  # the slider stops at the codebooks the recogniser reads
    text, grid, count, status = tab.transcribe(str(clips["mono"]), 3, 2)  # the real ASRPipeline's interface
    assert isinstance(text, str) and count == 3 * math.ceil(SR / HOP) and grid.shape == (300, 800, 3)
    with pytest.raises(gr.Error, match="from 1 to 3"):
        shown_on_page(tab.transcribe)(str(clips["mono"]), 4, 2)


# ---------------------------------------------------------------------------------------------------------
# `catcodec demo`


def test_cli_demo_subcommand(tmp_path, monkeypatch, capsys):
    import demo.app

    folder = tmp_path / "codec"
    _tiny_codec().save_pretrained(folder)
    calls = []
    monkeypatch.setattr(demo.app, "serve", lambda model, name, **kw: calls.append((model.config.hop_length, name, kw)) or 0)
    assert main(["demo", "--model", str(folder), "--port", "7999", "--tts-model", "t", "--asr-model", "a"]) == 0
    assert calls == [(HOP, str(folder.resolve()), dict(tts_model="t", asr_model="a", port=7999))]

    assert main(["demo", "--share"]) == 2  # no public links: the option does not exist
    assert "unrecognized arguments: --share" in capsys.readouterr().err

    monkeypatch.undo()  # the real serve: a --tts-model that is not a model folder stops it before serving
    assert main(["demo", "--model", str(folder), "--tts-model", str(tmp_path / "nothing"), "--port", "0"]) == 2
    assert "catcodec: error: --tts-model" in capsys.readouterr().err
    with socket.socket() as busy:  # ... and so does a port that is taken
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--model", str(folder), "--port", str(port)]) == 2
    assert f"catcodec: error: cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
