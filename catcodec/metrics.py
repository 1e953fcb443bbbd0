"""Quick objective figures for a reconstruction: multi-scale mel distance and SI-SDR.

The full evaluation suite (PESQ, STOI, speaker similarity, WER, baselines) is `catcodec eval`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .mel import MultiScaleMelLoss


@lru_cache(maxsize=4)
def _mel_loss(sampling_rate: int) -> MultiScaleMelLoss:
    return MultiScaleMelLoss(sampling_rate)


def _to_tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x).detach().cpu().float().reshape(-1)


@torch.no_grad()
def mel_distance(estimate, reference, sampling_rate: int) -> float:
    """Multi-scale log-mel L1 distance (lower is better, 0 = identical); inputs are 1-D waveforms."""
    est, ref = _align(_to_tensor(estimate), _to_tensor(reference))
    return float(_mel_loss(sampling_rate)(est[None], ref[None]))


def si_sdr(estimate, reference, eps: float = 1e-8) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (higher is better)."""
    est, ref = _align(_to_tensor(estimate).double(), _to_tensor(reference).double())
    est = est - est.mean()
    ref = ref - ref.mean()
    target = (est @ ref) / (ref @ ref + eps) * ref
    noise = est - target
    return float(10 * torch.log10((target @ target + eps) / (noise @ noise + eps)))


def _align(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Trim both to the shorter length (decoded audio is padded to whole frames)."""
    n = min(a.shape[-1], b.shape[-1])
    if n == 0:
        raise ValueError("cannot compare empty signals")
    return a[..., :n], b[..., :n]


__all__ = ["mel_distance", "si_sdr"]
