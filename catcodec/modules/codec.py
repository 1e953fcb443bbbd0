"""The two halves of a CAT codec around its quantizer.

Encoder: waveform -> patches -> stage 0 -> merge -> stage 1 -> ... -> latents at the frame rate.
Decoder: latents -> stage K-1 -> split -> ... -> stage 0 -> patches -> waveform.
Merges and splits are pure reshapes ("patch 2"); the Linear projections of the stages do the mixing.
"""

from __future__ import annotations

import torch
from torch import nn

from ..configuration_cat import CATConfig
from .harmonic_head import HarmonicControls, HarmonicHead, PitchPredictor
from .istft_head import ISTFTHead
from .pitch_input import PitchInput, PitchSkip
from .transformer import TransformerStage


def patchify(wav: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B, 1, T] (T a multiple of patch_size) -> [B, T / patch_size, patch_size]."""
    b, _, t = wav.shape
    return wav.reshape(b, t // patch_size, patch_size)


def unpatchify(patches: torch.Tensor) -> torch.Tensor:
    """[B, N, patch_size] -> [B, 1, N * patch_size]."""
    b, n, p = patches.shape
    return patches.reshape(b, 1, n * p)


def merge_frames(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[B, T, C] -> [B, T / factor, factor * C]: concatenate each group of neighbouring frames."""
    b, t, c = x.shape
    return x.reshape(b, t // factor, factor * c)


def split_frames(x: torch.Tensor, factor: int) -> torch.Tensor:
    """[B, T, factor * C] -> [B, factor * T, C]: the inverse of `merge_frames`."""
    b, t, c = x.shape
    return x.reshape(b, t * factor, c // factor)


def _stage_kwargs(config: CATConfig, stage: int) -> dict:
    return dict(
        window=config.window_tokens(stage),
        mlp_ratio=config.mlp_ratio,
        layer_scale_init=config.layer_scale_init,
        rope_theta=config.rope_theta,
        eps=config.layer_norm_eps,
    )


class CATEncoder(nn.Module):
    """Waveform [B, 1, T] (T a multiple of hop_length) -> latents [B, frames, stage_output_dims[-1]].
    With `config.pitch_input`, each patch enters with its causal pitch features (`PitchInput`)."""

    def __init__(self, config: CATConfig) -> None:
        super().__init__()
        self.patch_size = config.patch_size
        self.merge_factor = config.merge_factor
        self.stages = nn.ModuleList(
            TransformerStage(
                input_dim=config.encoder_input_dims[i],
                dim=config.stage_dims[i],
                output_dim=config.stage_output_dims[i],
                num_layers=config.stage_layers[i],
                num_heads=config.stage_heads[i],
                **_stage_kwargs(config, i),
            )
            for i in range(config.num_stages)
        )
        self.pitch = self.pitch_skip = None
        if config.pitch_input:
            self.pitch = PitchInput(config.sampling_rate, config.patch_size, config.harmonic_fmin, config.harmonic_fmax)
            self.pitch_skip = PitchSkip(config.tokens_per_frame(0), config.stage_output_dims[-1])

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = patchify(wav, self.patch_size)
        features = None
        if self.pitch is not None:
            features = self.pitch(wav)
            x = torch.cat([x, features], dim=-1)
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = merge_frames(x, self.merge_factor)
            x = stage(x)
        return x if features is None else x + self.pitch_skip(features)


class CATDecoder(nn.Module):
    """Latents [B, frames, stage_output_dims[-1]] -> waveform [B, 1, frames * hop_length].

    `stages[i]` mirrors encoder stage i (same rate); they run from the last to the first. Stage 0's output
    becomes audio by `unpatchify` (output_head "patch") or by an `ISTFTHead` (output_head "istft"), plus, when
    `config.num_harmonics` > 0, a `HarmonicHead` fed by a `PitchPredictor` on the latents (pitch, voicing) and by
    the stage's last `harmonic_envelope_bins` outputs (envelope).
    """

    def __init__(self, config: CATConfig) -> None:
        super().__init__()
        self.merge_factor = config.merge_factor
        self.stages = nn.ModuleList(
            TransformerStage(
                input_dim=config.stage_output_dims[i],
                dim=config.decoder_stage_dims[i],
                output_dim=config.encoder_input_dims[i] if i > 0 else config.decoder_output_dim,
                num_layers=config.decoder_stage_layers[i],
                num_heads=config.decoder_stage_heads[i],
                **_stage_kwargs(config, i),
            )
            for i in range(config.num_stages)
        )
        self.head = ISTFTHead(config.istft_window, config.patch_size) if config.output_head == "istft" else None
        self.main_head_dim = config.main_head_dim
        self.harmonic = None
        self.pitch_predictor = None
        if config.num_harmonics:
            self.pitch_predictor = PitchPredictor(config.stage_output_dims[-1], config.tokens_per_frame(0), config.harmonic_pitch_bins)
            self.harmonic = HarmonicHead(
                sampling_rate=config.sampling_rate,
                hop=config.patch_size,
                num_harmonics=config.num_harmonics,
                pitch_bins=config.harmonic_pitch_bins,
                envelope_bins=config.harmonic_envelope_bins,
                fmin=config.harmonic_fmin,
                fmax=config.harmonic_fmax,
            )

    def forward(
        self, latents: torch.Tensor, return_controls: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, HarmonicControls | None]:
        """Waveform; with `return_controls`, also the harmonic branch's controls (None without one)."""
        x = latents
        for i in reversed(range(len(self.stages))):
            x = self.stages[i](x)
            if i > 0:
                x = split_frames(x, self.merge_factor)
        main = x[..., : self.main_head_dim]
        audio = unpatchify(main) if self.head is None else self.head(main)
        controls = None
        if self.harmonic is not None:
            pitch_logits, voicing_logits = self.pitch_predictor(latents)
            controls = HarmonicControls(pitch_logits, voicing_logits, x[..., self.main_head_dim :])
            audio = audio + self.harmonic.synthesize(controls)
        return (audio, controls) if return_controls else audio


__all__ = ["CATEncoder", "CATDecoder", "patchify", "unpatchify", "merge_frames", "split_frames"]
