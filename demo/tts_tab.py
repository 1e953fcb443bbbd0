"""The TTS tab: text (and an optional voice prompt) in, speech out, streamed to the page while it is generated.

Without a TTS model the tab shows why (no weights bundled yet, and how to pass a trained folder) and its
endpoint answers with the same message.
"""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
import numpy as np

from catcodec.audio import save_audio

from .codec_tab import STREAM_CHUNK_SECONDS, bitrate_js, bitrate_slider, bitrate_text, check_num_quantizers
from .errors import shown_on_page
from .inputs import InputError, read_user_audio, to_int16
from .plots import spectrogram_image
from .streams import in_inference_mode, regroup

DEFAULT_TEXT = "The quick brown fox jumps over the lazy dog."
MAX_OUTPUT_SECONDS = 30.0
MAX_TEMPERATURE = 1.5


class TTSTab:
    """The TTS tab's components and handler, for one loaded `tts.pipeline.TTSPipeline` (or None, with a note)."""

    def __init__(self, tts: Any | None, note: str, max_seconds: float, workdir: Path) -> None:
        self.tts = tts
        self.note = note
        self.max_seconds = max_seconds
        self.workdir = workdir
        self.can_stream = shutil.which("ffmpeg") is not None  # Gradio's streaming player encodes with ffmpeg

    def speak(self, text: str, prompt_path: str | None, prompt_text: str | None, num_quantizers: float,
              temperature: float, top_p: float, seed: float | None, max_output_seconds: float) -> Iterator[tuple]:
        """Yield the speech chunk by chunk as it is generated, then its spectrogram and a .wav to download."""
        if self.tts is None:
            raise InputError(self.note)
        tts = self.tts
        sr = tts.sampling_rate
        n = check_num_quantizers(tts.model.config.num_quantizers, num_quantizers)
        if not 0.0 <= float(temperature) <= MAX_TEMPERATURE:
            raise InputError(f"Temperature must be between 0 and {MAX_TEMPERATURE:g}, got {temperature}.")
        if not 0.0 < float(top_p) <= 1.0:
            raise InputError(f"Top-p must be above 0 and at most 1, got {top_p}.")
        if seed is not None and int(seed) != seed:
            raise InputError(f"The seed must be a whole number, got {seed}.")
        if not 0.0 < float(max_output_seconds) <= MAX_OUTPUT_SECONDS:
            raise InputError(f"The longest output must be between 0 and {MAX_OUTPUT_SECONDS:g} s, got {max_output_seconds}.")
        notes = []
        prompt = None
        if prompt_path:
            audio = read_user_audio(prompt_path, sr, self.max_seconds)
            prompt = audio.wav
            notes += [f"voice prompt: {note}" for note in audio.notes]
        elif prompt_text and prompt_text.strip():
            notes.append("a prompt transcript without a prompt recording is ignored.")
        for note in notes:
            gr.Warning(note)

        chunks: list[np.ndarray] = []
        start = time.perf_counter()
        first = None
        frames = tts.stream(text or "", prompt=prompt, prompt_text=prompt_text if prompt is not None else None,
                            num_quantizers=n, temperature=float(temperature), top_p=float(top_p),
                            seed=None if seed is None else int(seed), max_seconds=float(max_output_seconds))
        for chunk in regroup(in_inference_mode(frames), round(STREAM_CHUNK_SECONDS * sr)):
            if first is None:
                first = time.perf_counter() - start
            chunks.append(chunk)
            if self.can_stream:
                yield (sr, to_int16(chunk)), gr.skip(), gr.skip(), f"speaking: {sum(c.size for c in chunks) / sr:.2f} s so far"
        elapsed = time.perf_counter() - start
        if not chunks or sum(c.size for c in chunks) == 0:
            raise InputError("The model produced no audio for this text: try other text, another seed or temperature.")
        speech = np.concatenate(chunks)
        folder = self.workdir / secrets.token_hex(8)
        path = folder / "speech.wav"
        save_audio(path, speech, sr)
        seconds = speech.size / sr
        lines = [
            f"{seconds:.2f} s of speech at {bitrate_text(tts.codec, n)}, generated in {elapsed:.2f} s "
            f"(real-time factor {elapsed / seconds:.2f}); first audio after {1000 * first:.0f} ms."
        ]
        lines += [f"Note: {note}" for note in notes]
        player = gr.skip() if self.can_stream else (sr, to_int16(speech))  # without ffmpeg: the whole, at the end
        yield player, spectrogram_image(speech, sr, "generated speech"), str(path), "\n\n".join(lines)

    def build(self, concurrency_id: str) -> None:
        """Lay out the tab (inside the current gr.Tab) and wire its event; a note instead when there is no model."""
        available = self.tts is not None
        if not available:
            gr.Markdown(f"### Text to speech is not available\n\n{self.note}", elem_id="tts-unavailable")
        top = self.tts.model.config.num_quantizers if available else 1
        codec = self.tts.codec if available else None
        with gr.Column(visible=available):
            with gr.Row():
                with gr.Column(scale=1):
                    text = gr.Textbox(DEFAULT_TEXT, lines=3, label="Text (English letters and . , ? ! ' - ; :)")
                    with gr.Accordion("Voice prompt (optional): speak in this voice", open=False):
                        prompt = gr.Audio(sources=["upload", "microphone"], type="filepath",
                                          label="Recording of the voice (up to 15 s)")
                        prompt_text = gr.Textbox(label="What the recording says (improves the imitation)")
                    n = bitrate_slider(top, top)
                    kbps = gr.Markdown(bitrate_text(codec, top) if codec is not None else "")
                    with gr.Row():
                        temperature = gr.Slider(0.0, MAX_TEMPERATURE, value=0.8, step=0.05, label="Temperature (0 = greedy)")
                        top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p")
                    with gr.Row():
                        seed = gr.Number(0, precision=0, label="Seed (empty = random)")
                        longest = gr.Slider(1, MAX_OUTPUT_SECONDS, value=20, step=1, label="Longest output (s)")
                    button = gr.Button("Speak", variant="primary")
                with gr.Column(scale=2):
                    status = gr.Markdown("Type some text and press **Speak**: the audio plays while it is generated.",
                                         label="Status")
                    streamed = gr.Audio(label="Speech (streams while it is generated)" if self.can_stream else "Speech",
                                        streaming=self.can_stream, autoplay=True, interactive=False)
                    spectrogram = gr.Image(label="Spectrogram", show_label=False, interactive=False, format="png")
                    wav_file = gr.File(label="Speech (.wav)", height=90)
        if codec is not None:
            n.change(None, inputs=n, outputs=kbps, js=bitrate_js(codec))
        button.click(shown_on_page(self.speak), inputs=[text, prompt, prompt_text, n, temperature, top_p, seed, longest],
                     outputs=[streamed, spectrogram, wav_file, status], api_name="tts",
                     concurrency_id=concurrency_id, concurrency_limit=1)


__all__ = ["TTSTab"]
