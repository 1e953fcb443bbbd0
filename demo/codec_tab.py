"""The codec tab: speech in, codes at the chosen bitrate, speech out; spectrograms, token grid, codes file.

In streaming mode the reconstruction plays while it is made: the codes go through
`catcodec.streaming.StreamingDecoder` one frame (80 ms) per push, and the audio goes to the page's
streaming player in pieces of `STREAM_CHUNK_SECONDS`.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Iterator

import gradio as gr
import numpy as np
import torch

from catcodec import CATModel
from catcodec.codes_file import CodesFile, write_codes
from catcodec.metrics import mel_distance
from catcodec.streaming import StreamingDecoder

from .errors import shown_on_page
from .inputs import InputError, read_user_audio, to_int16
from .plots import spectrogram_db, spectrogram_image, token_grid_image
from .streams import in_inference_mode, regroup

STREAM_CHUNK_SECONDS = 0.48  # audio sent to the streaming player per update: 6 frames at 12.5 frames/s
DEFAULT_NUM_QUANTIZERS = 8  # 1 kbps


def bitrate_text(codec: CATModel, n: int) -> str:
    """`n` codebooks as the line shown under the bitrate slider."""
    per = codec.config.bitrate(1)
    return f"**{n} codebook{'s' if n != 1 else ''} = {codec.config.bitrate(n) / 1000:g} kbps** ({per:g} bit/s each)"


def bitrate_js(codec: CATModel) -> str:
    """The same line computed in the browser, so moving the slider needs no server round trip."""
    per = codec.config.bitrate(1)
    return f"(n) => `**${{n}} codebook${{n == 1 ? '' : 's'}} = ${{+(n * {per} / 1000).toFixed(3)}} kbps** ({per:g} bit/s each)`"


def bitrate_slider(top: int, value: int) -> gr.Slider:
    """A slider of codebooks per frame, 1..top (a model with one codebook still gets a movable slider: Gradio
    wants maximum > minimum, and 2 is then refused by check_num_quantizers)."""
    return gr.Slider(1, max(top, 2), value=value, step=1, label=f"Bitrate: codebooks per frame (1 to {top})")


def check_num_quantizers(top: int, n: float | int | None) -> int:
    """The slider's value as an int in 1..top, or an InputError."""
    if n is None or int(n) != n or not 1 <= int(n) <= top:
        raise InputError(f"The number of codebooks must be a whole number from 1 to {top}, got {n}.")
    return int(n)


def encode(codec: CATModel, wav: np.ndarray, n: int) -> torch.Tensor:
    """Codes [1, n, frames] of mono float32 audio at the codec's rate."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None, None].to(codec.device)
    with torch.inference_mode():
        return codec.encode(x, num_quantizers=n).audio_codes


def decode(codec: CATModel, codes: torch.Tensor, num_samples: int) -> np.ndarray:
    """Offline decoding, cut to the original length."""
    with torch.inference_mode():
        audio = codec.decode(codes).audio_values
    return audio.reshape(-1)[:num_samples].float().cpu().numpy()


def stream_decode(codec: CATModel, codes: torch.Tensor, num_samples: int) -> Iterator[np.ndarray]:
    """Decode frame by frame with StreamingDecoder (one push per frame) and yield each frame's audio, the last
    one cut so that the whole is `num_samples` long."""
    hop = codec.config.hop_length
    with StreamingDecoder(codec) as decoder:
        for t in range(codes.shape[-1]):
            audio = decoder.push(codes[..., t : t + 1]).reshape(-1).float().cpu().numpy()
            yield audio[: max(0, num_samples - t * hop)]


class CodecTab:
    """The codec tab's components and handlers, for one loaded codec."""

    def __init__(self, codec: CATModel, codec_name: str, max_seconds: float, workdir: Path) -> None:
        self.codec = codec
        self.codec_name = codec_name
        self.max_seconds = max_seconds
        self.workdir = workdir
        self.chunk_samples = round(STREAM_CHUNK_SECONDS * codec.config.sampling_rate)
        self.can_stream = shutil.which("ffmpeg") is not None  # Gradio's streaming player encodes with ffmpeg

    # ---- work ----
    def _pictures(self, wav: np.ndarray, rec: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
        config = self.codec.config
        sr = config.sampling_rate
        top = float(max(spectrogram_db(wav, sr).max(), spectrogram_db(rec, sr).max()))  # one colour scale for both
        k, frames = codes.shape
        return (
            spectrogram_image(wav, sr, "original", vmax_db=top),
            spectrogram_image(rec, sr, f"reconstruction, {n} codebooks ({config.bitrate(n) / 1000:g} kbps)", vmax_db=top),
            token_grid_image(codes, config.frame_rate, config.codebook_size, f"{frames} frames x {k} codebooks = {codes.size:,} tokens"),
        )

    def _codes_file(self, codes: np.ndarray, num_samples: int, stem: str, n: int) -> str:
        folder = self.workdir / secrets.token_hex(8)
        folder.mkdir(parents=True)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:60] or "audio"
        path = folder / f"{safe}_q{n}.npz"
        write_codes(path, CodesFile.from_model(codes, num_samples, self.codec, self.codec_name))
        return str(path)

    def run(self, audio_path: str | None, num_quantizers: float, stream: bool) -> Iterator[tuple]:
        """Encode and decode the given audio; in streaming mode, yield the reconstruction as it is decoded first."""
        config = self.codec.config
        sr = config.sampling_rate
        n = check_num_quantizers(config.num_quantizers, num_quantizers)
        if stream and not self.can_stream:
            raise InputError("Streaming mode needs ffmpeg on the server (the player's audio is encoded with it): "
                             "install ffmpeg or untick streaming mode.")
        audio = read_user_audio(audio_path, sr, self.max_seconds)
        for note in audio.notes:
            gr.Warning(note)
        wav = audio.wav
        codes = encode(self.codec, wav, n)
        frames = codes.shape[-1]
        if stream:
            parts = []
            for chunk in regroup(in_inference_mode(stream_decode(self.codec, codes, wav.size)), self.chunk_samples):
                parts.append(chunk)
                done = sum(p.size for p in parts) / sr
                yield (*[gr.skip()] * 6, (sr, to_int16(chunk)), f"streaming: {done:.2f} of {audio.seconds:.2f} s decoded")
            rec = np.concatenate(parts)
        else:
            rec = decode(self.codec, codes, wav.size)
        codes_np = codes[0].cpu().numpy()
        spec_in, spec_out, grid = self._pictures(wav, rec, codes_np, n)
        codes_path = self._codes_file(codes_np, wav.size, Path(audio.name).stem, n)
        real_kbps = frames * n * config.bits_per_code / audio.seconds / 1000
        lines = [
            f"{bitrate_text(self.codec, n)}: {audio.seconds:.2f} s of audio became {frames} frames x {n} codebooks = "
            f"{frames * n:,} tokens ({real_kbps:.3f} kbps counting the padded last frame); "
            f"mel distance {mel_distance(rec, wav, sr):.3f} (0 = identical)."
        ]
        if stream:
            lines.append(f"Decoded frame by frame with the streaming decoder ({frames} pushes).")
        lines += [f"Note: {note}" for note in audio.notes]
        yield ((sr, to_int16(wav)), (sr, to_int16(rec)), spec_in, spec_out, grid, codes_path, gr.skip(), "\n\n".join(lines))

    # ---- page ----
    def build(self, concurrency_id: str) -> None:
        """Lay out the tab's components (inside the current gr.Tab) and wire their events."""
        config = self.codec.config
        top = config.num_quantizers
        default = min(DEFAULT_NUM_QUANTIZERS, top)
        with gr.Row():
            with gr.Column(scale=1):
                audio_in = gr.Audio(sources=["upload", "microphone"], type="filepath", elem_id="codec-input",
                                    label=f"Speech to encode (up to {self.max_seconds:g} s; any rate, mono or stereo)")
                n = bitrate_slider(top, default)
                kbps = gr.Markdown(bitrate_text(self.codec, default))
                stream = gr.Checkbox(False, interactive=self.can_stream,
                                     label="Streaming mode: play the reconstruction while it is decoded frame by frame"
                                     + ("" if self.can_stream else " (needs ffmpeg, not installed on this server)"))
                button = gr.Button("Encode and decode", variant="primary", elem_id="codec-run")
            with gr.Column(scale=2):
                status = gr.Markdown("Upload or record speech, choose the bitrate, press **Encode and decode**.",
                                     label="Status", elem_id="codec-status")
                with gr.Row():
                    original = gr.Audio(label=f"Original (mono, {config.sampling_rate} Hz)", interactive=False)
                    reconstructed = gr.Audio(label="Reconstruction", interactive=False, elem_id="codec-reconstruction")
                streamed = gr.Audio(label="Reconstruction, streamed as it is decoded", streaming=True, autoplay=True,
                                    interactive=False, visible=False)
                codes_file = gr.File(label="Codes (.npz: `catcodec decode CODES.npz OUT.wav` turns it back into audio)",
                                     height=90)
        with gr.Row():
            spec_in = gr.Image(label="Original spectrogram", show_label=False, interactive=False, format="png")
            spec_out = gr.Image(label="Reconstruction spectrogram", show_label=False, interactive=False, format="png")
        grid = gr.Image(label=f"Tokens: one row per codebook, one column per frame ({config.frame_rate:g} per second)",
                        interactive=False, format="png", elem_id="codec-grid")

        n.change(None, inputs=n, outputs=kbps, js=bitrate_js(self.codec))
        stream.change(lambda on: gr.update(visible=bool(on)), inputs=stream, outputs=streamed, queue=False,
                      api_name="codec_stream_toggle", api_visibility="private")
        button.click(shown_on_page(self.run), inputs=[audio_in, n, stream],
                     outputs=[original, reconstructed, spec_in, spec_out, grid, codes_file, streamed, status],
                     api_name="codec", concurrency_id=concurrency_id, concurrency_limit=1)


__all__ = ["CodecTab", "bitrate_text", "check_num_quantizers", "decode", "encode", "stream_decode"]
