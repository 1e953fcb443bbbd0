"""`TTSPipeline`: text (+ an optional voice prompt) -> speech, whole or streamed chunk by chunk.

    tts = TTSPipeline.from_pretrained()                  # the bundled cat-tts-small; or a folder such as runs/tts/model
    audio = tts("Good morning.", prompt="ref.wav", prompt_text="What the reference says.", seed=0)
    for chunk in tts.stream("Good morning."):                         # 80 ms of audio per frame
        play(chunk)

The voice prompt is encoded by the codec and its frames are put before the new ones (its transcript before
the text), so the model continues in the prompt's voice; only the new audio is returned.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from catcodec import CATModel
from catcodec.audio import load_audio
from catcodec.codes_file import check_codec_weights
from catcodec.decoder_weights import DECODER_FILE, load_decoder_weights
from catcodec.messages import quote
from catcodec.model_folders import find_model_folder
from catcodec.streaming import StreamingDecoder
from training.generation import SamplingConfig

from .generation import iter_frames
from .modeling_tts import CATTTSModel
from .text import MAX_CHARACTERS_PER_SECOND, CharTokenizer, TextError, tokenizer_for

PRETRAINED = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = "cat-tts-small"
TRAIN_HINT = "train one (python -m training tts --config configs/tts_small_cpu.yaml) and pass its model folder"
MAX_PROMPT_SECONDS = 15.0
MIN_PROMPT_RMS = 1e-3  # about -60 dBFS: quieter than this is silence, not a voice
MIN_CHARACTERS_PER_SECOND = 3.0  # slower than the slowest speech: a prompt's rate is clamped to this (and to the fastest)
# After a voice prompt the model first says the pause between two clips (training pairs join two recordings with
# their silences: 0.3-0.9 s after the bundled prompt), so end of speech waits for that pause too; without it a short
# text ("Thank you.") ended inside the pause and came out silent.
PROMPT_PAUSE_SECONDS = 0.8
# A TTS folder may carry the whole codec it reads and writes (config.json + weights in this subfolder), so that it
# keeps working when the default codec moves on to new codes; the bundled model does (its model card).
CODEC_DIR = "codec"


def carried_codec(folder: Path) -> Path | None:
    """The codec folder a TTS model folder carries (`folder/codec/` with a config), or None."""
    own = Path(folder) / CODEC_DIR
    return own if (own / "config.json").is_file() else None


class TTSPipeline:
    def __init__(self, model: CATTTSModel, codec: CATModel, tokenizer: CharTokenizer | None = None) -> None:
        if codec.config.num_quantizers < model.config.num_quantizers or codec.config.codebook_size != model.config.codebook_size:
            raise ValueError("the codec does not match the TTS model (codebooks or codebook size differ)")
        check_codec_weights(codec, model.config.codec_weights_id, "the TTS model")
        self.model = model.eval()
        self.codec = codec.eval()
        self.tokenizer = tokenizer or tokenizer_for(model.config.text_frontend)
        if self.tokenizer.vocab_size != model.config.text_vocab_size:
            raise ValueError(f"the tokenizer has {self.tokenizer.vocab_size} symbols, the TTS model reads "
                             f"{model.config.text_vocab_size} (text_frontend {model.config.text_frontend!r})")

    @classmethod
    def from_pretrained(cls, tts_path: str | Path | None = None, codec: str | Path | CATModel | None = None) -> "TTSPipeline":
        """A TTS model folder (default: the bundled `cat-tts-small`) and its codec. The default codec is the one
        the folder carries in `codec/` when it has one, else the one its config names, with the decoder the folder
        ships in `codec_decoder.safetensors` when it has one; a codec passed here is used as it is."""
        folder = find_model_folder(tts_path, PRETRAINED, DEFAULT_MODEL, "a TTS", TRAIN_HINT)
        model = CATTTSModel.from_pretrained(folder)
        own_codec = carried_codec(folder) if codec is None else None
        if own_codec is not None:
            codec = CATModel.from_pretrained(own_codec)
            check_codec_weights(codec, model.config.codec_weights_id, f"the TTS model in {quote(folder)}",
                                remedy=f"the codec in {quote(own_codec)} is not the one it was trained with "
                                       "(a model exported over another's folder?): remove that folder or put its own there")
        if not isinstance(codec, CATModel):
            own_decoder = folder / DECODER_FILE if codec is None else None
            codec = CATModel.from_pretrained(codec or model.config.codec_name)
            if own_decoder is not None and own_decoder.is_file():
                load_decoder_weights(codec, own_decoder)  # the decoder this model was tuned with (its model card)
                codec.weights_source = f"{codec.weights_source}, decoder {own_decoder}"
        return cls(model, codec)

    @property
    def sampling_rate(self) -> int:
        return self.codec.config.sampling_rate

    # ---- inputs ----
    def _prompt_codes(self, prompt, num_quantizers: int) -> torch.Tensor:
        wav = load_audio(prompt, self.sampling_rate) if isinstance(prompt, (str, Path)) else np.asarray(prompt, np.float32).reshape(-1)
        seconds = wav.size / self.sampling_rate
        if seconds > MAX_PROMPT_SECONDS:
            raise ValueError(f"voice prompt is too long: {seconds:.1f} s (max {MAX_PROMPT_SECONDS:.0f} s); cut it")
        if wav.size == 0 or float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))) < MIN_PROMPT_RMS:
            raise ValueError("voice prompt is silent: give a recording of the voice to imitate")
        with torch.inference_mode():
            return self.codec.encode(torch.from_numpy(wav)[None, None], num_quantizers=num_quantizers).audio_codes[0]

    def _frames(self, text, prompt, prompt_text, num_quantizers, sampling, max_seconds) -> Iterator[torch.Tensor]:
        k = self.model.config.num_quantizers if num_quantizers is None else num_quantizers
        if not 1 <= k <= self.model.config.num_quantizers:
            raise ValueError(f"num_quantizers must be in 1..{self.model.config.num_quantizers}, got {k}")
        text_ids = self.tokenizer.encode(text)  # TextError (a ValueError) on empty / unsupported / too long
        with_prompt_text = prompt is not None and prompt_text
        ids = self.tokenizer.encode(f"{prompt_text.strip()} {text}") if with_prompt_text else text_ids
        prompt_codes = self._prompt_codes(prompt, k) if prompt is not None else None
        # the prompt's own speaking rate sets the text positions of a model with aligned_positions, within what
        # speech allows (a transcript that does not match its prompt should not throw the alignment far off)
        frame_rate = self.codec.config.frame_rate
        rate = None
        if with_prompt_text:
            rate = (len(ids) - len(text_ids)) / max(prompt_codes.shape[1], 1)
            rate = min(max(rate, MIN_CHARACTERS_PER_SECOND / frame_rate), MAX_CHARACTERS_PER_SECOND / frame_rate)
        max_frames = int(max_seconds * self.codec.config.frame_rate)
        # no end of speech before the text could have been said at the fastest rate allowed (after a prompt's pause)
        characters = len(text_ids) - 2  # without BOS / EOS
        pause = math.ceil(PROMPT_PAUSE_SECONDS * frame_rate) if prompt is not None else 0
        min_frames = min(max_frames, pause + math.ceil(characters * frame_rate / MAX_CHARACTERS_PER_SECOND))
        return iter_frames(self.model, ids, k, sampling, prompt_codes, max_frames=max_frames,
                           min_frames=max(1, min_frames), chars_per_frame=rate,
                           prompt_text_included=bool(with_prompt_text))

    # ---- outputs ----
    def stream(self, text: str, prompt=None, prompt_text: str | None = None, num_quantizers: int | None = None,
               temperature: float = 0.8, top_p: float | None = 0.95, top_k: int | None = None,
               seed: int | None = None, max_seconds: float = 30.0) -> Iterator[np.ndarray]:
        """Audio chunks (float32, one frame = hop_length samples each) as soon as each frame is generated."""
        sampling = SamplingConfig(temperature=temperature, top_p=top_p, top_k=top_k, seed=seed)
        frames = self._frames(text, prompt, prompt_text, num_quantizers, sampling, max_seconds)
        with torch.inference_mode(), StreamingDecoder(self.codec) as decoder:
            for frame in frames:
                yield decoder.push(frame[None, :, None]).reshape(-1).float().numpy()

    def __call__(self, text: str, **kwargs) -> np.ndarray:
        """The whole utterance as float32 samples at `sampling_rate`."""
        chunks = list(self.stream(text, **kwargs))
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


__all__ = ["TTSPipeline", "TextError"]
