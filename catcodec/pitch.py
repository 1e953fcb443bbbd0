"""Pitch (f0) and voicing of speech, one value per hop, by YIN (de Cheveigné & Kawahara, 2002) in batched torch.

Used as the training target of the harmonic output head: a small decoder learns what pitch to sing far faster
when told than when it must find it through spectral losses alone. Pure torch, so it runs on the training
batch where it lies (CPU or GPU), no per-item Python loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class PitchTrack:
    """f0: `[B, N]` Hz (0 where unvoiced); voiced: `[B, N]` bool; periodicity: `[B, N]` 1 - the YIN
    aperiodicity at the chosen lag (1 = perfectly periodic)."""

    f0: torch.Tensor
    voiced: torch.Tensor
    periodicity: torch.Tensor


def log_pitch_position(f0: torch.Tensor, fmin: float, fmax: float) -> torch.Tensor:
    """Hz -> position on a log-frequency scale, 0 at fmin and 1 at fmax (clamped to that range)."""
    lo, hi = math.log(fmin), math.log(fmax)
    return (torch.log(f0.clamp(min=fmin, max=fmax)) - lo) / (hi - lo)


def pitch_window(sampling_rate: int, fmin: float) -> int:
    """Samples one YIN analysis reads: an integration window of one longest period plus the longest lag."""
    lag_max = int(round(sampling_rate / fmin))
    return 2 * lag_max + 1


def estimate_pitch(
    wav: torch.Tensor,
    sampling_rate: int,
    hop: int,
    fmin: float = 60.0,
    fmax: float = 500.0,
    threshold: float = 0.15,
    silence_db: float = -50.0,
    causal: bool = False,
) -> PitchTrack:
    """wav `[B, T]` or `[B, 1, T]` -> a `PitchTrack` with N = T // hop frames. Frame t describes the samples
    around the centre of hop t, or, with `causal`, the `pitch_window` samples that end with hop t (zeros before
    the signal), so it never reads ahead. A frame is voiced when the cumulative-mean-normalised difference has
    a local minimum below `threshold` at a lag of 1/fmax..1/fmin and the frame is louder than `silence_db` dBFS."""
    if wav.dim() == 3:
        wav = wav[:, 0]
    if wav.dim() != 2:
        raise ValueError(f"estimate_pitch: wav must be [batch, samples] or [batch, 1, samples], got {tuple(wav.shape)}")
    if not 0 < fmin < fmax < sampling_rate / 2:
        raise ValueError(f"estimate_pitch: need 0 < fmin < fmax < sampling_rate / 2, got {fmin}, {fmax}")
    x = wav.float()
    b, t = x.shape
    n = t // hop
    span = pitch_window(sampling_rate, fmin)
    if n == 0:
        empty = x.new_zeros(b, 0)
        return PitchTrack(empty, empty.bool(), empty)
    if causal:  # frame t reads padded[t * hop : t * hop + span] = wav[(t + 1) * hop - span : (t + 1) * hop]
        padded = F.pad(x, (span - hop, 0))
        starts = torch.arange(n, device=x.device) * hop
    else:  # frame t's span is centred on the centre of hop t
        padded = F.pad(x, (span // 2, span))
        starts = torch.arange(n, device=x.device) * hop + hop // 2
    frames = padded[:, starts[:, None] + torch.arange(span, device=x.device)[None, :]]  # [B, N, span]
    return pitch_of_frames(frames, sampling_rate, fmin, fmax, threshold, silence_db)


def pitch_of_frames(
    frames: torch.Tensor,
    sampling_rate: int,
    fmin: float,
    fmax: float,
    threshold: float = 0.15,
    silence_db: float = -50.0,
) -> PitchTrack:
    """YIN on analysis frames [B, N, pitch_window(sampling_rate, fmin)] -> a `PitchTrack` of N frames."""
    lag_min = max(2, int(sampling_rate / fmax))
    lag_max = int(round(sampling_rate / fmin))
    width = lag_max  # integration window: one longest period
    span = frames.shape[-1]
    if span != width + lag_max + 1:
        raise ValueError(f"pitch_of_frames: frames must hold {width + lag_max + 1} samples, got {span}")
    frames = frames.float()
    frames = frames - frames.mean(-1, keepdim=True)

    # d(tau) = sum_{j<W} (x_j - x_{j+tau})^2 = e(0) + e(tau) - 2 r(tau)
    size = 1 << (span + width - 1).bit_length()
    head = F.pad(frames[..., :width], (0, span - width))
    r = torch.fft.irfft(torch.conj(torch.fft.rfft(head, size)) * torch.fft.rfft(frames, size), size)[..., : lag_max + 1]
    sq = F.pad(frames.square().cumsum(-1), (1, 0))
    lags = torch.arange(lag_max + 1, device=frames.device)
    energy = sq[..., lags + width] - sq[..., lags]  # e(tau) = sum_{j<W} x_{j+tau}^2
    diff = (energy[..., :1] + energy - 2 * r).clamp(min=0.0)
    cumulative = diff[..., 1:].cumsum(-1)
    cmnd = torch.ones_like(diff)
    cmnd[..., 1:] = diff[..., 1:] * lags[1:] / cumulative.clamp(min=1e-12)

    inner = cmnd[..., lag_min:lag_max]
    prev, nxt = cmnd[..., lag_min - 1 : lag_max - 1], cmnd[..., lag_min + 1 : lag_max + 1]
    candidate = (inner <= prev) & (inner <= nxt) & (inner < threshold)
    has = candidate.any(-1)
    first = candidate.float().argmax(-1)  # the first (shortest-lag) dip below the threshold
    lag = first + lag_min
    # parabolic interpolation of the dip for a sub-sample lag
    y0 = cmnd.gather(-1, (lag - 1)[..., None])[..., 0]
    y1 = cmnd.gather(-1, lag[..., None])[..., 0]
    y2 = cmnd.gather(-1, (lag + 1)[..., None])[..., 0]
    denom = y0 - 2 * y1 + y2
    shift = torch.where(denom.abs() > 1e-9, 0.5 * (y0 - y2) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    f0 = sampling_rate / (lag.float() + shift)

    rms = frames[..., :width].square().mean(-1).sqrt()
    loud = 20 * torch.log10(rms.clamp(min=1e-10)) > silence_db
    voiced = has & loud
    periodicity = (1.0 - y1).clamp(0.0, 1.0)
    return PitchTrack(f0=torch.where(voiced, f0, torch.zeros_like(f0)), voiced=voiced, periodicity=periodicity)


def harmonic_amplitudes(
    wav: torch.Tensor, f0: torch.Tensor, sampling_rate: int, hop: int, num_harmonics: int, n_fft: int = 1024
) -> torch.Tensor:
    """The amplitude of each harmonic of `f0` in `wav`, measured per hop: wav `[B, T]` or `[B, 1, T]`, f0 `[B, N]`
    Hz (> 0) -> `[B, N, num_harmonics]` sinusoid amplitudes (a sinusoid a * sin(...) measures a).

    Frame t is read from a Hann-windowed STFT frame centred on the end of hop t (sample (t + 1) * hop: where the
    harmonic head's frame t takes its value); each harmonic's amplitude is the largest magnitude within half a
    harmonic spacing of h * f0, scaled by 2 / sum(window). Harmonics at or above Nyquist measure 0. The target
    of the harmonic branch's envelope (`catcodec.losses.harmonic_amplitude_loss`)."""
    if wav.dim() == 3:
        wav = wav[:, 0]
    b, n = f0.shape
    if wav.dim() != 2 or wav.shape[0] != b:
        raise ValueError(f"harmonic_amplitudes: wav must be [{b}, samples] for f0 of shape {tuple(f0.shape)}, got {tuple(wav.shape)}")
    x = wav.float()
    window = torch.hann_window(n_fft, device=x.device)
    x = F.pad(x, (n_fft // 2 - hop, n_fft // 2 + hop + max(0, (n + 1) * hop - x.shape[-1])))
    spec = torch.stft(x, n_fft, hop, window=window, center=False, return_complex=True).abs()[..., :n]  # [B, F, N]
    spec = spec.transpose(1, 2)  # [B, N, F]
    bins = spec.shape[-1]
    bin_hz = sampling_rate / n_fft
    f0 = f0.float().clamp(min=1.0)
    centre = f0[..., None] * torch.arange(1, num_harmonics + 1, device=x.device) / bin_hz  # [B, N, H] bins
    reach = int(math.ceil(float(f0.max()) / 2 / bin_hz)) if n else 0  # search half-width: half a spacing, in bins
    offsets = torch.arange(-reach, reach + 1, device=x.device)
    idx = centre.round()[..., None] + offsets  # [B, N, H, K]
    near = (idx - centre[..., None]).abs() * bin_hz <= f0[..., None, None] / 2
    inside = (idx >= 0) & (idx < bins)
    values = spec.gather(-1, idx.clamp(0, bins - 1).long().reshape(b, n, -1)).reshape(idx.shape)
    peak = torch.where(near & inside, values, torch.zeros_like(values)).amax(-1)
    below_nyquist = centre * bin_hz < sampling_rate / 2
    return 2 * peak / window.sum() * below_nyquist


__all__ = ["PitchTrack", "estimate_pitch", "harmonic_amplitudes", "log_pitch_position", "pitch_of_frames", "pitch_window"]
