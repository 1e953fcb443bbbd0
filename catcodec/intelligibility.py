"""A differentiable stand-in for STOI: the codec's optional intelligibility loss.

STOI (Taal et al., 2011) correlates the short-time envelopes of the reference and the degraded speech in 15
one-third-octave bands (150 Hz .. 4.3 kHz) over 384 ms segments, after scaling the degraded envelope to the
reference's energy and clipping it 15 dB above it. The log-mel loss averages over every band and frame alike
(upper band and pauses included); this measure rewards only what STOI measures: speech-band envelopes that
rise and fall with the reference's (on v4's decoder it raised STOI by 0.03 and PocketSphinx heard no difference). Computed with `torch.stft` at the model's own rate (frames
of 25.6 ms, hop 12.8 ms, as STOI's at 10 kHz); silent reference frames (40 dB below the loudest of the item)
are left out of each segment's statistics instead of cut out of the signal, so a batch keeps its shape (segments
with fewer than half their frames active are left out), and bands that are silent in the reference through a
segment (80 dB below the item's loudest) are left out of the mean.
`1 - EnvelopeCorrelation(...)` is the loss; on whole utterances the measure follows `pystoi.stoi` closely
(tests/test_intelligibility.py), but it is a training signal, not the metric: evaluate with `catcodec eval`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .mel import centered_stft


def third_octave_bands(sampling_rate: int, n_fft: int, num_bands: int = 15, lowest_centre: float = 150.0) -> torch.Tensor:
    """[num_bands, n_fft // 2 + 1] 0/1 matrix: which STFT bins each one-third-octave band sums (STOI's bands)."""
    freqs = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sampling_rate / n_fft
    centres = lowest_centre * 2.0 ** (torch.arange(num_bands, dtype=torch.float64) / 3)
    low, high = centres * 2 ** (-1 / 6), centres * 2 ** (1 / 6)
    if float(high[-1]) > sampling_rate / 2:
        raise ValueError(f"{num_bands} bands from {lowest_centre} Hz reach {float(high[-1]):.0f} Hz, above Nyquist at {sampling_rate} Hz")
    bands = ((freqs[None, :] >= low[:, None]) & (freqs[None, :] < high[:, None])).float()
    if bool((bands.sum(-1) == 0).any()):
        raise ValueError(f"n_fft {n_fft} at {sampling_rate} Hz leaves a one-third-octave band without an STFT bin")
    return bands


class EnvelopeCorrelation(nn.Module):
    """Mean STOI-style correlation [B] (about -1..1; 1 = the envelopes match up to scale) of `estimate` against
    `reference`, both [B, 1, T] or [B, T] at `sampling_rate`."""

    def __init__(
        self,
        sampling_rate: int,
        segment_frames: int = 30,  # 384 ms at a 12.8 ms hop
        clip_db: float = -15.0,  # STOI's beta: the scaled estimate may exceed the reference by at most 15 dB
        dynamic_range_db: float = 40.0,  # frames this far below the item's loudest are silence
        band_range_db: float = 80.0,  # band-segments this far below the item's loudest carry nothing to match
        eps: float = 1e-10,
    ) -> None:
        super().__init__()
        self.frame_length = round(0.0256 * sampling_rate)
        self.hop_length = self.frame_length // 2
        self.n_fft = 2 ** math.ceil(math.log2(2 * self.frame_length))  # zero-padded, as STOI's 512 at 10 kHz
        self.segment_frames = segment_frames
        self.clip = 1 + 10 ** (-clip_db / 20)
        self.dynamic_range_db = dynamic_range_db
        self.band_range = 10 ** (-band_range_db / 10)
        self.eps = eps
        window = torch.zeros(self.n_fft)
        start = (self.n_fft - self.frame_length) // 2
        window[start : start + self.frame_length] = torch.hann_window(self.frame_length + 2, periodic=False)[1:-1]
        self.register_buffer("window", window, persistent=False)
        self.register_buffer("bands", third_octave_bands(sampling_rate, self.n_fft), persistent=False)

    def power(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, bins, frames] STFT power |X|^2."""
        return centered_stft(wav, self.window, self.hop_length).abs().pow(2)

    def envelopes(self, power: torch.Tensor) -> torch.Tensor:
        """[B, bands, frames] band amplitudes sqrt(sum of |X|^2 over the band's bins)."""
        return (self.bands @ power + self.eps).sqrt()  # + eps: a finite gradient in silent bands

    def active_frames(self, power: torch.Tensor) -> torch.Tensor:
        """[B, frames] 1.0 where the frame's energy (its power summed over bins) is within `dynamic_range_db` of
        the item's loudest frame."""
        energy_db = 10 * torch.log10(power.sum(-2) + self.eps)
        return (energy_db > energy_db.amax(-1, keepdim=True) - self.dynamic_range_db).float()

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        if estimate.shape != reference.shape:
            raise ValueError(f"shapes differ: {tuple(estimate.shape)} vs {tuple(reference.shape)}")
        reference_power = self.power(reference)
        x, y = self.envelopes(reference_power), self.envelopes(self.power(estimate))  # [B, J, M]
        weight = self.active_frames(reference_power)  # [B, M]
        n = min(self.segment_frames, x.shape[-1])
        xs, ys = x.unfold(-1, n, 1), y.unfold(-1, n, 1)  # [B, J, S, N]
        ws = weight.unfold(-1, n, 1)[:, None]  # [B, 1, S, N]
        count = ws.sum(-1, keepdim=True)
        # STOI's normalisation and clipping: the estimate scaled to the reference's energy, at most clip x it
        scale = ((xs.pow(2) * ws).sum(-1, keepdim=True) + self.eps).sqrt() / ((ys.pow(2) * ws).sum(-1, keepdim=True) + self.eps).sqrt()
        ys = torch.minimum(ys * scale, xs * self.clip)
        xc = xs - (xs * ws).sum(-1, keepdim=True) / count.clamp_min(1)
        yc = ys - (ys * ws).sum(-1, keepdim=True) / count.clamp_min(1)
        corr = (xc * yc * ws).sum(-1) / ((xc.pow(2) * ws).sum(-1) * (yc.pow(2) * ws).sum(-1) + self.eps**2).sqrt()
        # band-segments with at least two active frames and some energy in the reference's band
        energy = (xs.pow(2) * ws).sum(-1)  # [B, J, S]
        loudest = energy.flatten(1).amax(-1)[:, None, None]
        usable = ((count[..., 0] >= max(2, n // 2)) & (energy > loudest * self.band_range)).float()
        return (corr * usable).sum((-1, -2)) / usable.sum((-1, -2)).clamp_min(1)


class IntelligibilityLoss(nn.Module):
    """1 - mean EnvelopeCorrelation over the batch: 0 for identical audio, about 0.5 for noise against speech
    (as with STOI, the scaling and clipping leave chance above 0)."""

    def __init__(self, sampling_rate: int) -> None:
        super().__init__()
        self.correlation = EnvelopeCorrelation(sampling_rate)

    def forward(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return 1 - self.correlation(estimate.float(), reference.float()).mean()


__all__ = ["EnvelopeCorrelation", "IntelligibilityLoss", "third_octave_bands"]
