"""`CATModel`: the CAT codec in the Hugging Face audio-tokenizer convention (EncodecModel, MimiModel, DacModel).

    codes = model.encode(wav [B, 1, T], padding_mask, num_quantizers).audio_codes   # [B, K, frames]
    audio = model.decode(codes, lengths).audio_values                             # [B, 1, frames * hop]
    out = model(wav)  # training pass: audio_values, audio_codes, VQ losses, quantizer latents

Right-padded batches give, item by item, the codes and audio of each item alone: every layer is causal,
padded samples are zeroed, and nothing mixes items. Inside `with model.streaming():` encode/decode take
consecutive chunks of whole frames and return exactly what one offline call on the whole signal returns.
"""

from __future__ import annotations

import hashlib

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from transformers import initialization as init
from transformers.modeling_utils import PreTrainedAudioTokenizerBase
from transformers.utils import ModelOutput

from .configuration_cat import CATConfig
from .modules.codec import CATDecoder, CATEncoder
from .modules.harmonic_head import HarmonicControls
from .modules.quantizer import FactorizedVectorQuantizer, QuantizerOutput, ResidualVectorQuantizer
from .modules.streaming import reset_streaming, streaming
from .modules.transformer import LayerScale, TransformerStage


@dataclass
class CATEncoderOutput(ModelOutput):
    """
    audio_codes: `[batch, num_quantizers, frames]` codebook indices.
    code_lengths: `[batch]` frames that hold real audio per item (the rest encode padding).
    """

    audio_codes: torch.LongTensor | None = None
    code_lengths: torch.LongTensor | None = None


@dataclass
class CATDecoderOutput(ModelOutput):
    """
    audio_values: `[batch, 1, frames * hop_length]` decoded waveform, zero past each item's length.
    audio_lengths: `[batch]` valid samples per item.
    """

    audio_values: torch.FloatTensor | None = None
    audio_lengths: torch.LongTensor | None = None


@dataclass
class CATOutput(ModelOutput):
    """
    loss: weighted commitment + codebook loss (the reconstruction losses live in the training task).
    audio_values: `[batch, 1, samples]` reconstruction, trimmed to the input length.
    audio_codes: `[batch, num_quantizers, frames]`.
    code_lengths: `[batch]`.
    quantized_representation: `[batch, frames, dim]` quantizer output, the decoder's input (read by the
        semantic head in training).
    encoder_latents: `[batch, frames, dim]` encoder output, the quantizer's input (matched in distillation).
    commitment_loss / codebook_loss: the two VQ losses, unweighted.
    residual_loss: share of the quantizer's input energy its layers leave unquantized (1 = none of it).
    pitch_logits / voicing_logits: `[batch, patches, pitch_bins]` / `[batch, patches]`, the harmonic branch's
        pitch and voicing predictions per patch frame (trained against a pitch track); None without the branch.
    harmonic_log_envelope: `[batch, patches, envelope_bins]` the harmonic branch's log-amplitude envelope;
        None without the branch.
    """

    loss: torch.FloatTensor | None = None
    audio_values: torch.FloatTensor | None = None
    audio_codes: torch.LongTensor | None = None
    code_lengths: torch.LongTensor | None = None
    quantized_representation: torch.FloatTensor | None = None
    encoder_latents: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    pitch_logits: torch.FloatTensor | None = None
    voicing_logits: torch.FloatTensor | None = None
    residual_loss: torch.FloatTensor | None = None
    harmonic_log_envelope: torch.FloatTensor | None = None


def _is_streaming(module: torch.nn.Module) -> bool:
    return any(s.is_streaming for s in module.modules() if isinstance(s, TransformerStage))


class CATPreTrainedModel(PreTrainedAudioTokenizerBase):
    config: CATConfig
    config_class = CATConfig
    base_model_prefix = "cat"
    main_input_name = "input_values"
    input_modalities = "audio"
    _no_split_modules = ["TransformerBlock"]

    def _init_weights(self, module: torch.nn.Module) -> None:
        if isinstance(module, torch.nn.Linear) and getattr(module, "zero_init", False):
            init.zeros_(module.weight)
        elif isinstance(module, torch.nn.Linear):
            std = module.in_features**-0.5 if getattr(module, "variance_preserving_init", False) else self.config.initializer_range
            init.trunc_normal_(module.weight, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, torch.nn.LayerNorm):
            init.ones_(module.weight)
        elif isinstance(module, LayerScale):
            init.constant_(module.scale, self.config.layer_scale_init)
        elif isinstance(module, FactorizedVectorQuantizer):
            init.normal_(module.codebook.weight, std=1.0)
            init.constant_(module.usage, 1.0 / module.codebook_size)


class CATModel(CATPreTrainedModel):
    """Causal Audio Tokenizer with Transformer: waveform <-> [K, frames] codes at 12.5 frames/s."""

    def __init__(self, config: CATConfig) -> None:
        super().__init__(config)
        self.encoder = CATEncoder(config)
        self.quantizer = ResidualVectorQuantizer(
            input_dim=config.stage_output_dims[-1],
            dim=config.quantizer_dim,
            num_quantizers=config.num_quantizers,
            codebook_size=config.codebook_size,
            codebook_dim=config.codebook_dim,
            dropout=config.quantizer_dropout,
            dead_code_threshold=config.dead_code_threshold,
            usage_decay=config.codebook_usage_decay,
            unit_codes=config.unit_codes,
        )
        self.decoder = CATDecoder(config)
        self.weights_source = "random initialisation (untrained)"
        self.post_init()

    # ---- loading by preset name ----------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load a local folder (`save_pretrained` output) or a preset name from `catcodec.presets`.

        Never downloads: a preset resolves to the weights bundled with the package, or, where none are
        bundled, to a seeded random initialisation whose `weights_source` says it is untrained.
        """
        from .presets import resolve_model_path  # local import: presets imports this module

        path, config = resolve_model_path(str(pretrained_model_name_or_path))
        if path is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = cls(config)
            model.weights_source = f"preset '{pretrained_model_name_or_path}', random initialisation (UNTRAINED)"
            return model.eval()
        kwargs.setdefault("local_files_only", True)
        kwargs.setdefault("dtype", torch.float32)  # shipped weights are bf16 on disk; compute in fp32 unless asked
        model = super().from_pretrained(path, *args, **kwargs)
        model.weights_source = str(path)
        return model

    # ---- what codes mean ------------------------------------------------------------------------
    def codes_fingerprint(self) -> str:
        """Short hash of the encoder and quantizer weights (usage statistics aside): two models give the same
        codes for the same audio only if this and the config hash agree. Hashes every weight (tens of ms for
        the small model): compute it once per batch of files, not per file."""
        digest = hashlib.sha256()
        for name, value in self.state_dict().items():
            if name.startswith(("encoder.", "quantizer.")) and not name.endswith(".usage"):
                digest.update(name.encode())
                digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @torch.no_grad()
    def code_vectors(self, num_quantizers: int | None = None) -> torch.Tensor:
        """[K, codebook_size, quantizer_dim]: what each code of each of the first K levels adds to the quantized
        latent (before the quantizer's output projection); a frame's latent is the sum over its codes. Models
        that read codes (ASR, TTS) can start their code embeddings from these."""
        n = self.quantizer.check_num_quantizers(num_quantizers)
        ids = torch.arange(self.config.codebook_size, device=self.device)[None]
        return torch.stack([layer.decode(ids)[0].float() for layer in self.quantizer.layers[:n]])

    # ---- input checks --------------------------------------------------------------------------
    def _prepare_input(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None,
        sampling_rate: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate [B, 1, T] audio, zero its padding, pad T to whole frames; returns (wav, lengths)."""
        if sampling_rate is not None and sampling_rate != self.config.sampling_rate:
            raise ValueError(
                f"this model reads {self.config.sampling_rate} Hz audio, got {sampling_rate} Hz: resample first "
                f"(catcodec.audio.load_audio does)"
            )
        if not torch.is_tensor(input_values):
            raise TypeError(f"input_values must be a torch.Tensor, got {type(input_values).__name__}")
        if input_values.dim() != 3:
            raise ValueError(f"input_values must be [batch, 1, samples], got shape {tuple(input_values.shape)}")
        b, c, t = input_values.shape
        if c != 1:
            raise ValueError(f"CAT reads mono audio [batch, 1, samples]; got {c} channels (down-mix: x.mean(1, keepdim=True))")
        if t == 0 or b == 0:
            raise ValueError(f"input_values is empty (shape {tuple(input_values.shape)})")
        if not input_values.is_floating_point():
            raise TypeError(f"input_values must be floating point audio in [-1, 1], got {input_values.dtype}")
        if not torch.isfinite(input_values).all():
            raise ValueError("input_values contains NaN or infinite samples")
        wav = input_values.to(self.dtype)
        if padding_mask is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=wav.device)
        else:
            mask = padding_mask.reshape(b, -1).to(wav.device).bool()
            if mask.shape[1] != t:
                raise ValueError(f"padding_mask has {mask.shape[1]} samples, input_values {t}")
            lengths = mask.sum(-1)
            prefix = torch.arange(t, device=wav.device)[None, :] < lengths[:, None]
            if not torch.equal(mask, prefix):
                raise ValueError("padding_mask must mark a prefix of each item (right padding): 1 ... 1 0 ... 0")
            if (lengths == 0).any():
                raise ValueError("padding_mask marks an item with no samples")
            wav = wav * mask[:, None, :].to(wav.dtype)
        hop = self.config.hop_length
        if _is_streaming(self.encoder):
            if t % hop:
                raise ValueError(
                    f"while streaming, chunks must be whole frames: a multiple of {hop} samples, got {t} "
                    f"(catcodec.streaming.StreamingEncoder buffers any chunk size)"
                )
        elif t % hop:
            wav = torch.nn.functional.pad(wav, (0, hop - t % hop))
        return wav, lengths

    def _code_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        return (sample_lengths + self.config.hop_length - 1) // self.config.hop_length

    # ---- the public API ------------------------------------------------------------------------
    def encode(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_quantizers: int | None = None,
        sampling_rate: int | None = None,
        return_dict: bool | None = None,
    ) -> CATEncoderOutput | tuple:
        """Waveform [B, 1, T] at `config.sampling_rate` -> codes [B, num_quantizers, ceil(T / hop_length)].

        `padding_mask` [B, T] (1 = real sample) marks right padding; `num_quantizers` (1..config.num_quantizers,
        default all) sets the bitrate: `config.bitrate(num_quantizers)` bits per second.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        n = self.quantizer.check_num_quantizers(num_quantizers)
        wav, lengths = self._prepare_input(input_values, padding_mask, sampling_rate)
        codes = self.quantizer.encode(self.encoder(wav), n)
        code_lengths = self._code_lengths(lengths)
        if not return_dict:
            return codes, code_lengths
        return CATEncoderOutput(audio_codes=codes, code_lengths=code_lengths)

    def decode(
        self,
        audio_codes: torch.Tensor,
        lengths: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> CATDecoderOutput | tuple:
        """Codes [B, K, frames] (any K from 1 to config.num_quantizers) -> waveform [B, 1, frames * hop_length].

        `lengths` [B] (frames per item, as `encode` returns) zeroes each item's audio past its end.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        audio, _ = self.decode_with_controls(audio_codes)
        b, _, t = audio.shape
        hop = self.config.hop_length
        if lengths is None:
            audio_lengths = torch.full((b,), t, dtype=torch.long, device=audio.device)
        else:
            audio_lengths = lengths.to(audio.device).long() * hop
            keep = torch.arange(t, device=audio.device)[None, :] < audio_lengths[:, None]
            audio = audio * keep[:, None, :].to(audio.dtype)
        if not return_dict:
            return audio, audio_lengths
        return CATDecoderOutput(audio_values=audio, audio_lengths=audio_lengths)

    def decode_with_controls(self, audio_codes: torch.Tensor) -> tuple[torch.Tensor, HarmonicControls | None]:
        """Codes [B, K, frames] -> (waveform [B, 1, frames * hop_length], the harmonic branch's controls or None
        without one), from one differentiable decoder pass: for losses on the pitch and envelope of decoded codes
        (training a decoder on codes from elsewhere) and for diagnosing them. `decode` is this without controls."""
        if not torch.is_tensor(audio_codes) or audio_codes.dtype not in (torch.int64, torch.int32, torch.int16):
            raise TypeError("audio_codes must be an integer tensor [batch, num_quantizers, frames]")
        if audio_codes.dim() != 3:
            raise ValueError(f"audio_codes must be [batch, num_quantizers, frames], got shape {tuple(audio_codes.shape)}")
        if audio_codes.shape[-1] == 0:
            raise ValueError("audio_codes has no frames")
        return self.decoder(self.quantizer.decode(audio_codes.long()), return_controls=True)

    def quantize(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_quantizers: int | None = None,
    ) -> tuple[QuantizerOutput, torch.Tensor]:
        """Encode and quantize in one differentiable pass, without decoding: (quantizer output, frames per
        item). For training losses on the codes alone, such as the semantic head's."""
        wav, lengths = self._prepare_input(input_values, padding_mask, None)
        return self.quantizer(self.encoder(wav), num_quantizers), self._code_lengths(lengths)

    def forward(
        self,
        input_values: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        num_quantizers: int | None = None,
        return_dict: bool | None = None,
    ) -> CATOutput | tuple:
        """Encode, quantize (with quantizer dropout in training mode) and decode in one differentiable pass."""
        return_dict = self.config.return_dict if return_dict is None else return_dict
        t = input_values.shape[-1]
        wav, lengths = self._prepare_input(input_values, padding_mask, None)
        latents = self.encoder(wav)
        q = self.quantizer(latents, num_quantizers)
        audio, controls = self.decoder(q.quantized, return_controls=True)
        audio = audio[..., :t]
        loss = self.config.commitment_loss_weight * q.commitment_loss + self.config.codebook_loss_weight * q.codebook_loss
        out = CATOutput(
            loss=loss,
            audio_values=audio,
            audio_codes=q.codes,
            code_lengths=self._code_lengths(lengths),
            quantized_representation=q.quantized,
            encoder_latents=latents,
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
            pitch_logits=None if controls is None else controls.pitch_logits,
            voicing_logits=None if controls is None else controls.voicing_logits,
            residual_loss=q.residual_loss,
            harmonic_log_envelope=None if controls is None else controls.log_envelope,
        )
        return out if return_dict else out.to_tuple()

    # ---- streaming -----------------------------------------------------------------------------
    @property
    def is_streaming(self) -> bool:
        return _is_streaming(self)

    @contextmanager
    def streaming(self, batch_size: int = 1) -> Iterator["CATModel"]:
        """Within this context, `encode` and `decode` carry their state from call to call: feed consecutive
        chunks of whole frames and the concatenated outputs equal one offline call. Memory is bounded by the
        attention window however long the stream runs."""
        with streaming(self, batch_size):
            yield self

    def reset_streaming(self) -> None:
        """Start a new stream inside the current `streaming()` context."""
        reset_streaming(self)

    # ---- facts ---------------------------------------------------------------------------------
    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.config.hop_length)


__all__ = ["CATModel", "CATPreTrainedModel", "CATEncoderOutput", "CATDecoderOutput", "CATOutput"]
