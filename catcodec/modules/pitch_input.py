"""Causal pitch features beside each input patch of the encoder (`CATConfig.pitch_input`).

Per patch: the YIN pitch of the `pitch_window` samples that end with the patch, as a position in [0, 1] on a
log scale from fmin to fmax (0 when unvoiced), the voicing (0 / 1) and the periodicity. Why: a small encoder
trained for an hour on a CPU does not learn to measure pitch from raw patches, so its codes carried almost
none and the decoder could not sing; handed the measurement, it only has to pass it on. Causal: a patch's
features read no sample after it; while streaming, the last window's worth of samples carries over.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..configuration_cat import PITCH_INPUT_FEATURES
from ..pitch import log_pitch_position, pitch_of_frames, pitch_window
from .streaming import StreamingModule

# The features enter the first projection scaled up to weigh like a patch of speech there (a 160-sample patch
# at speech level has a norm of about 1): at scale 1 a warm-started encoder had barely begun to read them after
# 500 steps (their weights' norm 0.1 against 1.4 for the samples').
FEATURE_GAIN = 10.0


class PitchInput(StreamingModule):
    """waveform [B, 1, T] (T a multiple of patch_size) -> [B, T / patch_size, 3] pitch features, times FEATURE_GAIN."""

    def __init__(self, sampling_rate: int, patch_size: int, fmin: float, fmax: float) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate
        self.patch_size = patch_size
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.span = pitch_window(sampling_rate, fmin)
        self.history = max(0, self.span - patch_size)  # samples before a patch that its analysis reads

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = wav[:, 0].float()
        b, t = x.shape
        n = t // self.patch_size
        if self.is_streaming:
            if b != self._streaming_batch_size:
                raise ValueError(f"streaming batch size is {self._streaming_batch_size}, got a chunk of batch {b}")
            past = self._streaming_state if self._streaming_state is not None else x.new_zeros(b, self.history)
            x = torch.cat([past, x], dim=1)
            self._streaming_state = x[:, x.shape[1] - self.history :].clone()
        else:
            x = F.pad(x, (self.history, 0))
        if n == 0:
            return wav.new_zeros(b, 0, PITCH_INPUT_FEATURES)
        # patch i ends at sample history + (i + 1) * patch_size of x; its window is the span before that
        starts = torch.arange(n, device=x.device) * self.patch_size + (self.history + self.patch_size - self.span)
        frames = x[:, starts[:, None] + torch.arange(self.span, device=x.device)[None, :]]
        track = pitch_of_frames(frames, self.sampling_rate, self.fmin, self.fmax)
        position = log_pitch_position(track.f0, self.fmin, self.fmax) * track.voiced
        features = torch.stack([position, track.voiced.float(), track.periodicity], dim=-1)
        return (FEATURE_GAIN * features).to(wav.dtype)


class PitchSkip(nn.Module):
    """Pitch features of a code frame's patches [B, F * P, 3] -> [B, F, latent_dim], added to the encoder's output:
    a linear path from the measurement to the codes, beside the long one through the Transformer stages.
    Starts at zero, so a warm-started encoder gives its saved codes until it learns to use it."""

    def __init__(self, patches_per_frame: int, latent_dim: int) -> None:
        super().__init__()
        self.patches_per_frame = patches_per_frame
        self.proj = nn.Linear(patches_per_frame * PITCH_INPUT_FEATURES, latent_dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.proj.zero_init = True  # CATPreTrainedModel._init_weights keeps it at zero

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, n, c = features.shape
        return self.proj(features.reshape(b, n // self.patches_per_frame, self.patches_per_frame * c))


__all__ = ["PitchInput", "PitchSkip"]
