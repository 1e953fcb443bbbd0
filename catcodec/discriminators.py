"""GAN discriminators for codec training: multi-period (waveform) and multi-scale complex STFT.

After HiFi-GAN's multi-period discriminator and EnCodec's / descript-audio-codec's complex STFT
discriminator. Every sub-discriminator maps a waveform [B, 1, T] to `(logits, features)`: unpooled
logits (one score per patch, for LSGAN losses) and the hidden activations for feature matching.
`width` scales the channel counts; the published sizes are `width=32`, the defaults are smaller so a
CPU training step stays cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .mel import centered_stft

DiscriminatorOutput = tuple[torch.Tensor, list[torch.Tensor]]  # (logits, feature maps)

LEAKY_SLOPE = 0.1
DEFAULT_PERIODS = (2, 3, 5, 7, 11)
DEFAULT_STFT_WINDOWS = (2048, 1024, 512)
DEFAULT_WIDTH = 8  # channels of the first layer; 32 is HiFi-GAN's / EnCodec's published size


def _conv2d(in_ch: int, out_ch: int, kernel: tuple[int, int], stride=(1, 1), dilation=(1, 1)) -> nn.Module:
    """Weight-normalised Conv2d with 'same' padding along both axes (before striding)."""
    padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return weight_norm(nn.Conv2d(in_ch, out_ch, kernel, stride=stride, dilation=dilation, padding=padding))


def _run_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> DiscriminatorOutput:
    """Conv -> LeakyReLU for each hidden layer (keeping every activation), then the logit conv."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LEAKY_SLOPE)
        features.append(x)
    return post(x), features


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN period discriminator: folds [B, 1, T] into [B, 1, T/p, p] and convolves along time only,
    so each column sees the samples p apart (periodic structure the mel loss is blind to)."""

    def __init__(self, period: int, width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        if period < 1 or width < 1:
            raise ValueError(f"period and width must be positive, got {period} and {width}")
        self.period = period
        # HiFi-GAN's 32 -> 128 -> 512 -> 1024 -> 1024, scaled by width / 32
        chans = [1, width, 4 * width, 16 * width, 32 * width, 32 * width]
        strides = [3, 3, 3, 3, 1]
        self.convs = nn.ModuleList(
            _conv2d(c_in, c_out, (5, 1), stride=(s, 1)) for c_in, c_out, s in zip(chans[:-1], chans[1:], strides)
        )
        self.post = _conv2d(chans[-1], 1, (3, 1))

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        b, c, t = wav.shape
        remainder = t % self.period
        if remainder:
            pad = self.period - remainder
            # reflect needs pad < t; constant padding covers (pathologically) short inputs
            wav = F.pad(wav, (0, pad), mode="reflect" if pad < t else "constant")
            t += pad
        return _run_stack(self.convs, self.post, wav.reshape(b, c, t // self.period, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """One PeriodDiscriminator per (prime) period."""

    def __init__(self, periods: tuple[int, ...] = DEFAULT_PERIODS, width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, width) for p in periods)

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        return [d(wav) for d in self.discriminators]


class ComplexSTFTDiscriminator(nn.Module):
    """EnCodec-style STFT discriminator: real and imaginary parts as 2 channels [B, 2, frames, freq],
    convolved with (3, 9) kernels, dilated 1, 2, 4 in time and strided by 2 in frequency. Seeing the
    phase, it penalises artefacts a magnitude loss cannot."""

    def __init__(
        self,
        window_length: int,
        hop_length: int | None = None,
        width: int = DEFAULT_WIDTH,
        dilations: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.window_length = window_length
        self.hop_length = hop_length or window_length // 4
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)
        layers = [_conv2d(2, width, (3, 9))]
        layers += [_conv2d(width, width, (3, 9), stride=(1, 2), dilation=(d, 1)) for d in dilations]
        layers.append(_conv2d(width, width, (3, 3)))
        self.convs = nn.ModuleList(layers)
        self.post = _conv2d(width, 1, (3, 3))

    def spectrogram(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, 1, T] -> [B, 2, frames, window_length // 2 + 1] (real, imaginary; normalised STFT).
        The FFT runs in fp32 (cuFFT has no bf16), whatever the autocast dtype."""
        spec = centered_stft(wav, self.window, self.hop_length, normalized=True)  # [B, freq, frames]
        return torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        return _run_stack(self.convs, self.post, self.spectrogram(wav))


class MultiScaleSTFTDiscriminator(nn.Module):
    """One ComplexSTFTDiscriminator per window length, hop = window / 4."""

    def __init__(self, window_lengths: tuple[int, ...] = DEFAULT_STFT_WINDOWS, width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(ComplexSTFTDiscriminator(w, w // 4, width) for w in window_lengths)

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        return [d(wav) for d in self.discriminators]


class CodecDiscriminator(nn.Module):
    """Multi-period plus multi-scale STFT discriminator: one (logits, features) entry per sub-discriminator,
    periods first. Either family can be dropped by passing an empty tuple."""

    def __init__(
        self,
        periods: tuple[int, ...] = DEFAULT_PERIODS,
        stft_windows: tuple[int, ...] = DEFAULT_STFT_WINDOWS,
        width: int = DEFAULT_WIDTH,
    ) -> None:
        super().__init__()
        if not periods and not stft_windows:
            raise ValueError("CodecDiscriminator needs at least one period or one STFT window")
        self.mpd = MultiPeriodDiscriminator(tuple(periods), width)
        self.mstftd = MultiScaleSTFTDiscriminator(tuple(stft_windows), width)

    def forward(self, wav: torch.Tensor) -> list[DiscriminatorOutput]:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected a waveform [B, 1, T], got shape {tuple(wav.shape)}")
        return self.mpd(wav) + self.mstftd(wav)


__all__ = [
    "DiscriminatorOutput",
    "PeriodDiscriminator",
    "MultiPeriodDiscriminator",
    "ComplexSTFTDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "CodecDiscriminator",
    "DEFAULT_PERIODS",
    "DEFAULT_STFT_WINDOWS",
    "DEFAULT_WIDTH",
]
