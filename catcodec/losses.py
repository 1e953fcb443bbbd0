"""Codec training losses: LSGAN adversarial terms, relative feature matching, and the loss weights.

Every loss takes the discriminator's output list, one `(logits, features)` pair per sub-discriminator
(`catcodec.discriminators.CodecDiscriminator`). Adversarial terms are least-squares GAN (HiFi-GAN, DAC);
feature matching is EnCodec's relative L1. All reduce in fp32 (safe under autocast). The multi-scale mel reconstruction loss lives in
`catcodec.mel` and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch

from .mel import MultiScaleMelLoss
from .modules.harmonic_head import NYQUIST_MARGIN, HarmonicHead
from .pitch import PitchTrack, harmonic_amplitudes

DiscriminatorOutputs = Sequence[tuple[torch.Tensor, Sequence[torch.Tensor]]]


def _check_pair(real_outputs: DiscriminatorOutputs, fake_outputs: DiscriminatorOutputs) -> None:
    if len(real_outputs) != len(fake_outputs):
        raise ValueError(f"{len(real_outputs)} real vs {len(fake_outputs)} fake sub-discriminator outputs")
    if not real_outputs:
        raise ValueError("no sub-discriminator outputs")


def discriminator_loss(real_outputs: DiscriminatorOutputs, fake_outputs: DiscriminatorOutputs) -> torch.Tensor:
    """LSGAN discriminator loss, summed over sub-discriminators: mean((1 - D(real))^2) + mean(D(fake)^2).
    Pass outputs computed on detached fake audio so the generator gets no gradient from it."""
    _check_pair(real_outputs, fake_outputs)
    loss = real_outputs[0][0].new_zeros((), dtype=torch.float32)
    for (real_logits, _), (fake_logits, _) in zip(real_outputs, fake_outputs):
        loss = loss + (1 - real_logits.float()).pow(2).mean() + fake_logits.float().pow(2).mean()
    return loss


def generator_adversarial_loss(fake_outputs: DiscriminatorOutputs) -> torch.Tensor:
    """LSGAN generator loss, summed over sub-discriminators: mean((1 - D(fake))^2)."""
    if not fake_outputs:
        raise ValueError("no sub-discriminator outputs")
    loss = fake_outputs[0][0].new_zeros((), dtype=torch.float32)
    for fake_logits, _ in fake_outputs:
        loss = loss + (1 - fake_logits.float()).pow(2).mean()
    return loss


def feature_matching_loss(
    real_outputs: DiscriminatorOutputs,
    fake_outputs: DiscriminatorOutputs,
    eps: float = 1e-8,
    reduction: Literal["sum", "mean"] = "sum",
) -> torch.Tensor:
    """Relative feature matching (EnCodec): per layer mean|f_real - f_fake| / (mean|f_real| + eps), averaged
    over each sub-discriminator's layers, then summed over sub-discriminators (`reduction="sum"`, like the
    adversarial terms, so their ratio does not depend on how many there are) or averaged (`"mean"`,
    EnCodec's 1/KL). Real features are detached: only the generator learns from this term."""
    _check_pair(real_outputs, fake_outputs)
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    loss = fake_outputs[0][0].new_zeros((), dtype=torch.float32)
    for (_, real_feats), (_, fake_feats) in zip(real_outputs, fake_outputs):
        if len(real_feats) != len(fake_feats) or not real_feats:
            raise ValueError(f"feature lists differ or are empty: {len(real_feats)} real vs {len(fake_feats)} fake")
        per_disc = fake_feats[0].new_zeros((), dtype=torch.float32)
        for real, fake in zip(real_feats, fake_feats):
            real, fake = real.detach().float(), fake.float()
            per_disc = per_disc + (real - fake).abs().mean() / (real.abs().mean() + eps)
        loss = loss + per_disc / len(real_feats)
    return loss / len(fake_outputs) if reduction == "mean" else loss


@dataclass
class PitchLosses:
    """pitch: cross-entropy of the pitch classes against a Gaussian (one bin wide) around the target, on voiced
    frames; voicing: binary cross-entropy of the voicing logit on all frames; accuracy: share of voiced frames
    whose predicted pitch lies within 50 cents of the target (a figure to log, no gradient)."""

    pitch: torch.Tensor
    voicing: torch.Tensor
    accuracy: float


def pitch_losses(
    pitch_logits: torch.Tensor,
    voicing_logits: torch.Tensor,
    target: PitchTrack,
    head: HarmonicHead,
    frame_mask: torch.Tensor,
) -> PitchLosses:
    """Losses of the harmonic branch's pitch [B, N, bins] and voicing [B, N] predictions against `target`, on
    frames where `frame_mask` is true; predictions, target and mask are cut to the shortest of them (the model
    pads the signal to whole code frames)."""
    n = min(pitch_logits.shape[1], target.f0.shape[1], frame_mask.shape[1])
    logits, v_logits = pitch_logits[:, :n].float(), voicing_logits[:, :n].float()
    voiced, mask = target.voiced[:, :n], frame_mask[:, :n].bool()
    bins = torch.arange(head.pitch_bins, device=logits.device, dtype=torch.float32)
    centre = head.pitch_bin_position(target.f0[:, :n])
    soft = torch.exp(-0.5 * (bins - centre[..., None]) ** 2)
    soft = soft / soft.sum(-1, keepdim=True)
    ce = -(soft * torch.log_softmax(logits, dim=-1)).sum(-1)
    use = voiced & mask
    pitch = (ce * use).sum() / use.sum().clamp(min=1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(v_logits, voiced.float(), reduction="none")
    voicing = (bce * mask).sum() / mask.sum().clamp(min=1)
    with torch.no_grad():
        cents = 1200 * torch.log2(head.pitch_hz(logits) / target.f0[:, :n].clamp(min=1e-3)).abs()
        accuracy = float(((cents < 50) & use).sum() / use.sum().clamp(min=1))
    return PitchLosses(pitch=pitch, voicing=voicing, accuracy=accuracy)


#: measured amplitudes are floored here (about -80 dB of full scale) before the log, so silent harmonics do not
#: ask for an infinitely deep envelope
AMPLITUDE_FLOOR = 1e-4


def harmonic_amplitude_loss(
    log_envelope: torch.Tensor,
    audio: torch.Tensor,
    target: PitchTrack,
    head: HarmonicHead,
    frame_mask: torch.Tensor,
) -> torch.Tensor:
    """Mean |log amplitude| error of the harmonic branch's envelope [B, N, envelope_bins], read at the harmonics
    of the target pitch, against those harmonics' amplitudes measured in `audio` [B, 1, T]
    (`catcodec.pitch.harmonic_amplitudes`); voiced frames where `frame_mask` is true, harmonics below
    the head's Nyquist margin. Teaches the envelope the formants directly: trained through the mel loss
    alone, v4's branch had muted itself above its third harmonic (67-116 dB under the speech's harmonics 5-40,
    `benchmarks/diagnose_codec_quality.py`) and left the formant harmonics to the main head."""
    n = min(log_envelope.shape[1], target.f0.shape[1], frame_mask.shape[1])
    f0 = target.f0[:, :n]
    use = target.voiced[:, :n] & frame_mask[:, :n].bool()
    if not bool(use.any()):
        return log_envelope.sum() * 0.0
    with torch.no_grad():
        measured = harmonic_amplitudes(audio, torch.where(use, f0, torch.full_like(f0, 100.0)), head.sampling_rate, head.hop, head.num_harmonics)
        freqs = head.harmonic_frequencies(f0)
        weight = (use[..., None] & (freqs < NYQUIST_MARGIN * head.sampling_rate / 2)).float()
    predicted = head.log_amplitude_at(log_envelope[:, :n], freqs)
    error = (predicted - torch.log(measured.clamp(min=AMPLITUDE_FLOOR))).abs()
    return (error * weight).sum() / weight.sum().clamp(min=1)


@dataclass
class CodecLossWeights:
    """Weights of the generator's loss terms (published CAT / DAC-style defaults)."""

    semantic: float = 20.0  # semantic distillation / prediction head
    reconstruction: float = 15.0  # multi-scale mel L1 (MultiScaleMelLoss)
    commitment: float = 0.25  # quantizer commitment (encoder -> codes)
    codebook: float = 1.0  # quantizer codebook (codes -> encoder)
    residual: float = 0.0  # quantizer: share of the latent's energy its layers leave (0: off, as v1-v4 trained)
    adversarial: float = 1.0  # generator_adversarial_loss
    feature: float = 2.0  # feature_matching_loss
    pitch: float = 1.0  # harmonic branch: pitch classes vs a YIN track (models with num_harmonics > 0 only)
    voicing: float = 1.0  # harmonic branch: voiced / unvoiced
    intelligibility: float = 0.0  # 1 - STOI-style band-envelope correlation (catcodec.intelligibility; 0: off, as v1-v4 trained)
    harmonic_amplitude: float = 0.0  # harmonic branch: envelope at the harmonics vs their measured amplitudes (0: off, as v1-v4 trained)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> CodecLossWeights:
        """Build from a (config) mapping; missing keys keep their defaults, unknown keys are an error
        so a misspelt weight cannot be silently ignored."""
        values = dict(values or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown loss weight(s) {unknown}; expected some of {known}")
        parsed = {}
        for key, value in values.items():
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"loss weight {key!r} must be a number, got {value!r}") from None
            if parsed[key] < 0:
                raise ValueError(f"loss weight {key!r} must be >= 0, got {parsed[key]}")
        return cls(**parsed)


__all__ = [
    "CodecLossWeights",
    "PitchLosses",
    "pitch_losses",
    "harmonic_amplitude_loss",
    "MultiScaleMelLoss",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
]
