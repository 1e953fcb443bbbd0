"""Multi-scale log-mel L1 distance: the codec's reconstruction loss and its quick quality figure.

After descript-audio-codec: 7 STFT scales with windows 2^5..2^11 samples, hop = window / 4, mel bins
5, 10, ..., 320, L1 between log10 mel magnitudes (floored at 1e-5), summed over scales. Spectra come from
`torch.stft` and librosa's mel filters (no torchaudio).
"""

from __future__ import annotations

import warnings

import librosa
import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_WINDOWS = (32, 64, 128, 256, 512, 1024, 2048)
DEFAULT_MELS = (5, 10, 20, 40, 80, 160, 320)


def centered_stft(wav: torch.Tensor, window: torch.Tensor, hop_length: int, normalized: bool = False) -> torch.Tensor:
    """Complex STFT [B, window // 2 + 1, frames] of [B, 1, T] or [B, T] audio, in fp32 (cuFFT has no bf16):
    centred Hann-windowed frames, reflect padding (very short inputs are zero-padded enough to allow it)."""
    n_fft = window.shape[0]
    x = wav.reshape(-1, wav.shape[-1]).float()
    if x.shape[-1] <= n_fft // 2:  # reflect padding needs more samples than half a window
        x = F.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    return torch.stft(x, n_fft=n_fft, hop_length=hop_length, window=window, center=True, pad_mode="reflect",
                      normalized=normalized, return_complex=True)


class MelSpectrogram(nn.Module):
    """Waveform [B, 1, T] or [B, T] -> mel magnitude [B, n_mels, frames] (Hann window, centred frames)."""

    def __init__(self, sampling_rate: int, window_length: int, n_mels: int, hop_length: int | None = None) -> None:
        super().__init__()
        self.window_length = window_length
        self.hop_length = hop_length or window_length // 4
        with warnings.catch_warnings():  # librosa warns that the smallest scales have empty filters; expected
            warnings.simplefilter("ignore")
            fb = librosa.filters.mel(sr=sampling_rate, n_fft=window_length, n_mels=n_mels, fmin=0.0, fmax=sampling_rate / 2)
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(window_length), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.filters @ centered_stft(wav, self.window, self.hop_length).abs()


class MultiScaleMelLoss(nn.Module):
    """Sum over scales of mean |log10 mel(x) - log10 mel(y)|; 0 for identical audio."""

    def __init__(
        self,
        sampling_rate: int,
        window_lengths: tuple[int, ...] = DEFAULT_WINDOWS,
        n_mels: tuple[int, ...] = DEFAULT_MELS,
        clamp_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if len(window_lengths) != len(n_mels):
            raise ValueError("window_lengths and n_mels must have the same length")
        self.clamp_eps = clamp_eps
        self.scales = nn.ModuleList(MelSpectrogram(sampling_rate, w, m) for w, m in zip(window_lengths, n_mels))

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if estimate.shape[-1] != reference.shape[-1]:
            raise ValueError(f"lengths differ: {estimate.shape[-1]} vs {reference.shape[-1]} samples")
        loss = estimate.new_zeros((), dtype=torch.float32)
        for mel in self.scales:
            a = mel(estimate).clamp_min(self.clamp_eps).log10()
            b = mel(reference).clamp_min(self.clamp_eps).log10()
            loss = loss + (a - b).abs().mean()
        return loss


__all__ = ["centered_stft", "MelSpectrogram", "MultiScaleMelLoss", "DEFAULT_WINDOWS", "DEFAULT_MELS"]
