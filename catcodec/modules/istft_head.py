"""A causal inverse-STFT output head (after Vocos), the alternative to the linear un-patch.

The decoder's last stage predicts, per patch frame, a log-magnitude and a phase for each of the
n_fft // 2 + 1 bins; each frame is inverse-FFT'd, windowed and overlap-added with a hop of one patch.
Frame t's window covers samples [t * hop, t * hop + n_fft), so the samples of hop t are final once frame t
exists (frames t - k + 1 .. t overlap them, k = n_fft / hop): causal, with no added latency. The frames'
tails that reach into later hops are kept while streaming and added to the next call's output.

Why: a small decoder trained mostly by spectral losses learns magnitudes and per-bin phases far faster
than it learns raw 160-sample patches whose phase must line up sample by sample.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .streaming import StreamingModule

MAX_MAGNITUDE = 100.0  # as in Vocos: exp() of the predicted log-magnitude is clipped here


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """[B, N, L] frames placed at t * hop and summed -> [B, (N - 1) * hop + L]."""
    b, n, length = frames.shape
    out = F.fold(
        frames.transpose(1, 2),
        output_size=(1, (n - 1) * hop + length),
        kernel_size=(1, length),
        stride=(1, hop),
    )
    return out.reshape(b, -1)


class ISTFTHead(StreamingModule):
    """[B, N, 2 * (n_fft // 2 + 1)] (log-magnitudes, then phases) -> waveform [B, 1, N * hop]."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        if n_fft % hop or n_fft < 2 * hop:
            raise ValueError(f"ISTFTHead: n_fft ({n_fft}) must be a multiple of the hop ({hop}), at least twice it")
        self.n_fft = n_fft
        self.hop = hop
        self.overlap = n_fft // hop  # frames that overlap any one hop
        self.num_bins = n_fft // 2 + 1
        # Not a buffer: a loader that builds modules on the meta device (transformers' from_pretrained) would
        # leave a non-persistent buffer uninitialised, and the window is cheap to make where it is needed.
        self._windows: dict[torch.device, torch.Tensor] = {}

    def window(self, device: torch.device) -> torch.Tensor:
        """The periodic Hann synthesis window (fp32) on `device`."""
        if device not in self._windows:
            self._windows[device] = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float32, device=device)
        return self._windows[device]

    @property
    def input_dim(self) -> int:
        return 2 * self.num_bins

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        """Windowed time-domain frames [B, N, n_fft], computed in fp32 whatever the input dtype."""
        x = x.float()
        log_mag, phase = x[..., : self.num_bins], x[..., self.num_bins :]
        mag = torch.exp(log_mag).clamp(max=MAX_MAGNITUDE)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        return torch.fft.irfft(spec, n=self.n_fft, dim=-1) * self.window(x.device)

    def _steady_envelope(self, device: torch.device) -> torch.Tensor:
        """Sum of the squared windows that overlap each sample of a hop, away from the start: [hop]."""
        return (self.window(device) ** 2).reshape(self.overlap, self.hop).sum(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        if n == 0:
            return x.new_zeros(b, 1, 0)
        summed = overlap_add(self._frames(x), self.hop)  # [B, (n + overlap - 1) * hop]
        if self.is_streaming:
            if b != self._streaming_batch_size:
                raise ValueError(f"streaming batch size is {self._streaming_batch_size}, got a chunk of batch {b}")
            tail = self._streaming_state
            if tail is not None:
                summed[:, : tail.shape[-1]] += tail
            self._streaming_state = summed[:, n * self.hop :].clone()
        # Dividing by the steady envelope everywhere fades the first (overlap - 1) hops of a stream in, where
        # fewer frames overlap, instead of amplifying the window's near-zero edge there.
        out = summed[:, : n * self.hop].reshape(b, n, self.hop) / self._steady_envelope(x.device)
        return out.reshape(b, 1, n * self.hop).to(x.dtype)


__all__ = ["ISTFTHead", "overlap_add", "MAX_MAGNITUDE"]
