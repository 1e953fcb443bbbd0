"""`ASRPipeline`: speech (files, waveforms, or CAT codes) -> text, one item or a batch.

    asr = ASRPipeline.from_pretrained("runs/asr_small_cpu/model")      # codec from the model's config
    asr("speech.flac")                                                   # -> "the transcript"
    asr(["a.wav", waveform], sampling_rate=8000, beam=4)                 # -> ["...", "..."]
    asr.transcribe_codes(codes)                                          # codes [K, frames] -> "..."

Audio is resampled to the codec's rate, cut at pauses into pieces of at most `max_piece_seconds`
(`asr.segment`), encoded by the codec in padded batches and decoded by the ASR model in padded batches; the
pieces' transcripts are joined with spaces.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import librosa
import numpy as np
import torch

from catcodec import CATModel
from catcodec.audio import AudioError, load_audio, validate_waveform
from catcodec.codes_file import check_codec_weights
from catcodec.model_folders import find_model_folder
from tts.text import CharTokenizer

from .decoding import check_decoding, transcribe
from .modeling_asr import CATASRModel
from .segment import join_transcripts, split_audio

PRETRAINED = Path(__file__).parent / "pretrained"
DEFAULT_MODEL = "cat-asr-small"
TRAIN_HINT = "train one (python -m training asr --config configs/asr_small_cpu.yaml) and pass its model folder"

Audio = Union[str, os.PathLike, np.ndarray, torch.Tensor]


class ASRPipeline:
    def __init__(self, model: CATASRModel, codec: CATModel, tokenizer: CharTokenizer | None = None,
                 max_piece_seconds: float = 20.0, batch_size: int = 8) -> None:
        if codec.config.num_quantizers < model.config.num_quantizers or codec.config.codebook_size != model.config.codebook_size:
            raise ValueError("the codec does not match the ASR model (codebooks or codebook size differ)")
        check_codec_weights(codec, model.config.codec_weights_id, "the ASR model")
        if not max_piece_seconds > 0 or batch_size < 1:
            raise ValueError("max_piece_seconds must be > 0 and batch_size >= 1")
        self.model = model.eval()
        self.codec = codec.eval()
        self.tokenizer = tokenizer or CharTokenizer()
        self.max_piece_seconds = max_piece_seconds
        self.batch_size = batch_size

    @classmethod
    def from_pretrained(cls, asr_path: str | Path | None = None, codec: str | Path | CATModel | None = None,
                        max_piece_seconds: float = 20.0, batch_size: int = 8) -> "ASRPipeline":
        """An ASR model folder (default: the bundled `cat-asr-small`) and its codec (default: the one it names)."""
        model = CATASRModel.from_pretrained(find_model_folder(asr_path, PRETRAINED, DEFAULT_MODEL, "an ASR", TRAIN_HINT))
        if not isinstance(codec, CATModel):
            codec = CATModel.from_pretrained(codec or model.config.codec_name)
        return cls(model, codec, max_piece_seconds=max_piece_seconds, batch_size=batch_size)

    @property
    def sampling_rate(self) -> int:
        return self.codec.config.sampling_rate

    # ---- inputs ----
    def _waveform(self, audio: Audio, sampling_rate: int | None, name: str) -> np.ndarray:
        """One input as mono float32 at the codec's rate; ValueErrors (AudioError) that say what to fix."""
        if isinstance(audio, (str, os.PathLike)):
            return load_audio(audio, self.sampling_rate)  # any rate, any channels (down-mixed); up to an hour
        if not isinstance(audio, (np.ndarray, torch.Tensor)):
            raise TypeError(f"audio must be a file path, a 1-D numpy array or torch tensor, or a list of those; "
                            f"got {type(audio).__name__}")
        wav = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
        shape = list(wav.shape)
        if wav.ndim > 1 and sum(d > 1 for d in shape) > 1:
            raise AudioError(f"'{name}' has shape {shape}: give mono audio [samples]; mix stereo down first "
                             f"(e.g. audio.mean(axis=0))")
        wav = wav.reshape(-1)
        validate_waveform(wav, name=name)
        if np.issubdtype(wav.dtype, np.integer):  # PCM samples: scale to [-1, 1]
            wav = wav / float(np.iinfo(wav.dtype).max + 1)
        wav = wav.astype(np.float32)
        if sampling_rate is None:
            raise ValueError(f"'{name}' is a waveform: pass its sampling_rate (files carry their own)")
        if sampling_rate != self.sampling_rate:
            wav = librosa.resample(wav, orig_sr=sampling_rate, target_sr=self.sampling_rate, res_type="soxr_hq")
            wav = np.ascontiguousarray(wav, dtype=np.float32)
        return wav

    def _num_quantizers(self, num_quantizers: int | None) -> int:
        k = self.model.config.num_quantizers if num_quantizers is None else num_quantizers
        if not 1 <= k <= self.model.config.num_quantizers:
            raise ValueError(f"num_quantizers must be in 1..{self.model.config.num_quantizers}, got {k}")
        return k

    def _encode(self, pieces: list[np.ndarray], num_quantizers: int) -> list[torch.Tensor]:
        """Codes [K, frames] of each piece, encoded in padded batches (each exactly as if alone)."""
        device = next(self.codec.parameters()).device
        out: list[torch.Tensor] = [torch.empty(0)] * len(pieces)
        order = sorted(range(len(pieces)), key=lambda i: -pieces[i].size)  # similar lengths together: less padding
        for s in range(0, len(order), self.batch_size):
            chunk = order[s : s + self.batch_size]
            lengths = torch.tensor([pieces[i].size for i in chunk])
            batch = torch.zeros(len(chunk), 1, int(lengths.max()))
            for j, i in enumerate(chunk):
                batch[j, 0, : pieces[i].size] = torch.from_numpy(pieces[i])
            mask = (torch.arange(batch.shape[-1])[None] < lengths[:, None]).long()
            with torch.inference_mode():
                enc = self.codec.encode(batch.to(device), mask.to(device), num_quantizers=num_quantizers)
            for j, i in enumerate(chunk):
                out[i] = enc.audio_codes[j, :, : int(enc.code_lengths[j])].cpu()
        return out

    def _transcribe_pieces(self, codes: list[torch.Tensor], num_quantizers: int, beam: int,
                           ctc_weight: float = 0.0) -> list[str]:
        texts: list[str] = [""] * len(codes)
        order = sorted(range(len(codes)), key=lambda i: -codes[i].shape[1])
        for s in range(0, len(order), self.batch_size):
            chunk = order[s : s + self.batch_size]
            with torch.inference_mode():
                for i, text in zip(chunk, transcribe(self.model, [codes[i] for i in chunk], num_quantizers, beam,
                                                     self.tokenizer, ctc_weight)):
                    texts[i] = text
        return texts

    # ---- outputs ----
    def __call__(self, audio: Audio | Sequence[Audio], sampling_rate: int | None = None,
                 num_quantizers: int | None = None, beam: int = 1, ctc_weight: float = 0.0) -> str | list[str]:
        """Transcript of one input (a file path or a 1-D waveform), or a list of transcripts for a list of inputs.

        `sampling_rate` is that of waveforms (resampled when it differs from the codec's); files carry theirs.
        `num_quantizers` codebooks are read per frame (default: all the model reads); `beam` 1 is greedy;
        `ctc_weight` > 0 decodes jointly with the model's CTC head (`decoding.transcribe_ids`)."""
        single = not isinstance(audio, (list, tuple))
        items = [audio] if single else list(audio)
        k = self._num_quantizers(num_quantizers)
        check_decoding(self.model.config, beam, ctc_weight)
        owners, pieces = [], []
        for n, item in enumerate(items):
            name = os.fspath(item) if isinstance(item, (str, os.PathLike)) else ("audio" if single else f"audio[{n}]")
            wav = self._waveform(item, sampling_rate, name)
            for start, end in split_audio(wav, self.sampling_rate, self.max_piece_seconds):
                owners.append(n)
                pieces.append(wav[start:end])
        texts = self._transcribe_pieces(self._encode(pieces, k), k, beam, ctc_weight) if pieces else []
        out = [join_transcripts([t for o, t in zip(owners, texts) if o == n]) for n in range(len(items))]
        return out[0] if single else out

    def transcribe_codes(self, codes, num_quantizers: int | None = None, beam: int = 1,
                         ctc_weight: float = 0.0) -> str | list[str]:
        """Transcript of codes [K, frames] (a tensor or an array, e.g. `read_codes(path).codes`), or a list of
        transcripts for a list of them (or a [B, K, frames] batch of equal lengths).

        Codes carry no loudness to find pauses by: sequences longer than `max_piece_seconds` are cut every
        `max_piece_seconds`."""
        single = not isinstance(codes, (list, tuple)) and np.ndim(codes) == 2
        items = [codes] if single else list(codes)
        k = self._num_quantizers(num_quantizers)
        check_decoding(self.model.config, beam, ctc_weight)
        size = self.model.config.codebook_size
        step = max(1, int(self.max_piece_seconds * self.codec.config.frame_rate))
        owners, pieces = [], []
        for n, item in enumerate(items):
            c = torch.as_tensor(np.asarray(item) if not isinstance(item, torch.Tensor) else item)
            if c.dim() != 2 or c.is_floating_point() or c.is_complex() or c.shape[1] == 0:
                raise ValueError(f"codes must be an integer array [codebooks, frames >= 1], got {c.dtype} {list(c.shape)}")
            if c.shape[0] < k:
                raise ValueError(f"codes have {c.shape[0]} codebooks, fewer than num_quantizers {k}")
            if int(c.min()) < 0 or int(c.max()) >= size:
                raise ValueError(f"codes hold values outside 0..{size - 1}: they are not this model's codec's codes")
            for s in range(0, c.shape[1], step):
                owners.append(n)
                pieces.append(c[:k, s : s + step].long())
        texts = self._transcribe_pieces(pieces, k, beam, ctc_weight) if pieces else []
        out = [join_transcripts([t for o, t in zip(owners, texts) if o == n]) for n in range(len(items))]
        return out[0] if single else out


__all__ = ["ASRPipeline", "DEFAULT_MODEL"]
