"""The ASR tab: speech in, transcript out, with the codec tokens the recogniser read (picture and count).

The recogniser is `asr.pipeline.ASRPipeline`, called as `asr(wav, sampling_rate=sr, num_quantizers=n, beam=b)`.
Without one the tab shows why, and its endpoint answers with the same message.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from catcodec import CATModel

from .codec_tab import DEFAULT_NUM_QUANTIZERS, bitrate_js, bitrate_slider, bitrate_text, check_num_quantizers, encode
from .errors import shown_on_page
from .inputs import InputError, read_user_audio
from .plots import token_grid_image

MAX_BEAM = 16


class ASRTab:
    """The ASR tab's components and handler, for one loaded ASR pipeline (or None, with a note)."""

    def __init__(self, asr: Any | None, note: str, codec: CATModel, max_seconds: float) -> None:
        self.asr = asr
        self.note = note
        self.codec = getattr(asr, "codec", None) or codec  # the codec whose tokens the recogniser reads
        self.max_seconds = max_seconds
        model_config = getattr(getattr(asr, "model", None), "config", None)
        self.top = min(getattr(model_config, "num_quantizers", 10**9), self.codec.config.num_quantizers)

    def transcribe(self, audio_path: str | None, num_quantizers: float, beam: float) -> tuple:
        """The transcript, the token grid of the codes it was read from, their count, and a summary line."""
        if self.asr is None:
            raise InputError(self.note)
        config = self.codec.config
        n = check_num_quantizers(self.top, num_quantizers)
        if beam is None or int(beam) != beam or not 1 <= int(beam) <= MAX_BEAM:
            raise InputError(f"The beam width must be a whole number from 1 to {MAX_BEAM}, got {beam}.")
        audio = read_user_audio(audio_path, config.sampling_rate, self.max_seconds)
        for note in audio.notes:
            gr.Warning(note)
        codes = encode(self.codec, audio.wav, n)[0].cpu().numpy()
        text = self.asr(audio.wav, sampling_rate=config.sampling_rate, num_quantizers=n, beam=int(beam))
        k, frames = codes.shape
        grid = token_grid_image(codes, config.frame_rate, config.codebook_size, f"{frames} frames x {k} codebooks = {codes.size:,} tokens")
        lines = [f"Read {codes.size:,} tokens ({frames} frames x {k} codebooks, {bitrate_text(self.codec, n)}) "
                 f"from {audio.seconds:.2f} s of speech; beam {int(beam)}."]
        lines += [f"Note: {note}" for note in audio.notes]
        return str(text), grid, int(codes.size), "\n\n".join(lines)

    def build(self, concurrency_id: str) -> None:
        """Lay out the tab (inside the current gr.Tab) and wire its event; a note instead when there is no model."""
        available = self.asr is not None
        if not available:
            gr.Markdown(f"### Speech recognition is not available\n\n{self.note}", elem_id="asr-unavailable")
        top = self.top
        default = min(DEFAULT_NUM_QUANTIZERS, top)
        with gr.Column(visible=available):
            with gr.Row():
                with gr.Column(scale=1):
                    audio_in = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                        label=f"Speech to transcribe (up to {self.max_seconds:g} s)")
                    n = bitrate_slider(top, default)
                    kbps = gr.Markdown(bitrate_text(self.codec, default))
                    beam = gr.Slider(1, MAX_BEAM, value=4, step=1, label="Beam width (1 = greedy)")
                    button = gr.Button("Transcribe", variant="primary")
                with gr.Column(scale=2):
                    status = gr.Markdown("Upload or record speech and press **Transcribe**.", label="Status")
                    transcript = gr.Textbox(label="Transcript", interactive=False, lines=3)
                    count = gr.Number(label="Tokens read", precision=0, interactive=False)
                    grid = gr.Image(label="Tokens read: one row per codebook, one column per frame", interactive=False,
                                    format="png")
        n.change(None, inputs=n, outputs=kbps, js=bitrate_js(self.codec))
        button.click(shown_on_page(self.transcribe), inputs=[audio_in, n, beam], outputs=[transcript, grid, count, status],
                     api_name="asr", concurrency_id=concurrency_id, concurrency_limit=1)


__all__ = ["ASRTab"]
