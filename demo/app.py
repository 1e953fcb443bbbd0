"""`catcodec demo`: a Gradio page on localhost with three tabs: the codec, text to speech, speech recognition.

    catcodec demo [--model CODEC] [--tts-model DIR] [--asr-model DIR] [--port 7860]

`build_app(codec, tts, asr)` makes the page from models already loaded (the tests pass tiny ones); `serve`
loads the optional TTS and ASR pipelines once and serves the page until Ctrl+C. Only localhost: there is no
public share link.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import weakref
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import soundfile as sf

from catcodec import CATModel
from catcodec.audio import load_audio
from catcodec.metrics import mel_distance
from catcodec.messages import quote, reason
from catcodec.presets import PRETRAINED_DIR

from .asr_tab import ASRTab
from .codec_tab import CodecTab, decode, encode
from .errors import DemoError
from .models import load_asr, load_tts
from .plots import spectrogram_image
from .tts_tab import TTSTab

MAX_SECONDS = 120.0  # longest input accepted, in seconds
DEFAULT_PORT = 7860
HOST = "127.0.0.1"
MAX_UPLOAD = "100mb"
# Every event that runs a model shares one queue slot: the models are used by one request at a time, and the
# codec's streaming state lives in its modules, so two streams on the same codec must never overlap.
MODELS = "models"
NO_TTS = "No TTS model was given."
NO_ASR = "No ASR model was given."


def _weights(codec: CATModel) -> str:
    """Where the codec's weights come from, with the shipped ones named rather than shown as a server path."""
    source = str(getattr(codec, "weights_source", "unknown"))
    return f"shipped with catcodec ({Path(source).name})" if Path(source).parent == PRETRAINED_DIR else source


def _header(codec: CATModel, codec_name: str) -> str:
    c = codec.config
    lines = [
        "# CAT codec demo",
        f"Codec **{codec_name}**: {c.sampling_rate} Hz speech -> {c.frame_rate:g} frames per second, "
        f"1 to {c.num_quantizers} codebooks of {c.codebook_size} entries per frame "
        f"({c.bitrate(1) / 1000:g} to {c.bitrate(c.num_quantizers) / 1000:g} kbps). Weights: `{_weights(codec)}`.",
    ]
    if "UNTRAINED" in str(getattr(codec, "weights_source", "")).upper():
        lines.append("**Warning: these codec weights are untrained (random initialisation): the output is noise, not speech.**")
    return "\n\n".join(lines)


def build_app(codec: CATModel, tts: Any | None = None, asr: Any | None = None, max_seconds: float = MAX_SECONDS, *,
              codec_name: str | None = None, tts_note: str = NO_TTS, asr_note: str = NO_ASR) -> gr.Blocks:
    """The demo page for loaded models; `tts` is a `TTSPipeline`, `asr` an `ASRPipeline` (None: the tab says
    `tts_note` / `asr_note` instead). Endpoints: /codec, /tts, /asr."""
    if not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds!r}")
    codec = codec.eval()
    codec_name = codec_name or getattr(codec, "name_or_path", "") or "unnamed model"
    workdir = Path(tempfile.mkdtemp(prefix="catcodec-demo-"))  # codes files and wavs handed to the page
    with gr.Blocks(title="CAT codec demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(_header(codec, codec_name))
        with gr.Tabs():
            with gr.Tab("Codec", id="codec"):
                CodecTab(codec, codec_name, max_seconds, workdir).build(MODELS)
            with gr.Tab("Text to speech", id="tts"):
                TTSTab(tts, tts_note, max_seconds, workdir).build(MODELS)
            with gr.Tab("Speech recognition", id="asr"):
                ASRTab(asr, asr_note, codec, max_seconds).build(MODELS)
    weakref.finalize(app, shutil.rmtree, workdir, True)  # at exit, or when the app is dropped
    return app


def free_port(port: int) -> int:
    """`port` if nothing listens on it on localhost (0: any free port), else a DemoError."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise DemoError(f"cannot serve on {HOST}:{port}: {reason(exc)}; pass another --port") from None
        return probe.getsockname()[1]


def launch(app: gr.Blocks, port: int = DEFAULT_PORT, block: bool = True, quiet: bool = False) -> str:
    """Serve `app` on localhost:`port` (0: a free port); returns the page's URL. `block=True` serves until Ctrl+C;
    `block=False` returns at once (call `app.close()` to stop)."""
    port = free_port(port)
    try:
        _, url, _ = app.queue(default_concurrency_limit=1).launch(
            server_name=HOST, server_port=port, share=False, prevent_thread_lock=True, quiet=True,
            max_file_size=MAX_UPLOAD, ssr_mode=False, mcp_server=False, pwa=False, footer_links=["api"],
        )
    except OSError as exc:
        raise DemoError(f"cannot serve on {HOST}:{port}: {reason(exc)}; pass another --port") from None
    if not quiet:
        print(f"catcodec demo: serving on {url} (local only; Ctrl+C stops it)", file=sys.stderr, flush=True)
    if block:
        app.block_thread()
        app.close()
    return url


def warm_up(codec: CATModel) -> None:
    """Do once, before serving, the slow first-time work of a request (lazy imports, resampler, mel filters,
    plotting), so that the first visitor does not wait for it."""
    sr = codec.config.sampling_rate
    with tempfile.TemporaryDirectory(prefix="catcodec-demo-") as tmp:
        path = Path(tmp) / "warm_up.wav"
        sf.write(path, 0.1 * np.ones(sr // 10, np.float32), sr // 2)
        wav = load_audio(path, sr)  # a resampling read
    rec = decode(codec, encode(codec, wav, 1), wav.size)
    mel_distance(rec, wav, sr)
    spectrogram_image(rec, sr, "warm-up")


def serve(codec: CATModel, codec_name: str, tts_model: str | None = None, asr_model: str | None = None,
          port: int = DEFAULT_PORT, max_seconds: float = MAX_SECONDS) -> int:
    """Load the optional pipelines, build the page and serve it until Ctrl+C; DemoError if it cannot start."""
    free_port(port)  # say it before loading anything more
    tts, tts_note = load_tts(tts_model, codec, codec_name)
    asr, asr_note = load_asr(asr_model, codec, codec_name)
    for what, note in (("TTS", tts_note), ("ASR", asr_note)):
        if note:
            print(f"catcodec demo: no {what} tab: {note}", file=sys.stderr)
    if tts is not None:
        print(f"catcodec demo: TTS model {quote(tts_model or 'bundled')} loaded", file=sys.stderr)
    if asr is not None:
        print(f"catcodec demo: ASR model {quote(asr_model or 'bundled')} loaded", file=sys.stderr)
    app = build_app(codec, tts, asr, max_seconds, codec_name=codec_name, tts_note=tts_note, asr_note=asr_note)
    warm_up(codec)
    launch(app, port, block=True)
    return 0


__all__ = ["DemoError", "MAX_SECONDS", "build_app", "launch", "serve"]
