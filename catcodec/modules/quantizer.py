"""Factorized residual vector quantizer (after DAC's improved RVQ).

Each layer projects the residual to a low dimension (8), picks the codebook entry nearest by cosine, and
projects that entry back. As in DAC, the entry itself (its length too) is what the layer outputs and what the VQ
losses compare with the projected residual, so a layer can take away as much of the residual as it holds and the
next layer quantizes what is left. With `unit_codes` (the bundled weights v0-v3) a layer outputs its entry's unit
vector instead and the losses compare directions only: the residual's length is lost and the layers end up
quantizing the direction of nearly the same latent (the codec's model card measures it).

Codebooks are trained by gradient (no EMA): the codebook loss pulls entries to the encoder output, the commitment
loss the other way, and a straight-through estimator passes gradients around the argmax, to the projected
residual's direction only (its length picks no code and is not output; the commitment loss alone sets it). Fresh
DAC-style layers are calibrated before training (`calibrate_fresh_layers`) so each starts by shrinking its residual.
Quantizer dropout trains every prefix of layers, so any `num_quantizers` from 1 to the maximum decodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .transformer import variance_preserving


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [B, T, output_dim] decoder input (straight-through in training)
    codes: torch.Tensor  # [B, K, T] long
    commitment_loss: torch.Tensor  # scalar
    codebook_loss: torch.Tensor  # scalar
    latents: torch.Tensor  # [B, T, quantizer_dim] the residual stream before the first layer
    residual_loss: torch.Tensor  # scalar: share of the latents' energy the active layers leave


class FactorizedVectorQuantizer(nn.Module):
    """One RVQ layer: dim -> codebook_dim, cosine nearest neighbour among codebook_size codes, -> dim."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int,
        dead_code_threshold: float = 0.0,
        usage_decay: float = 0.98,
        unit_codes: bool = False,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.unit_codes = unit_codes
        self.dead_code_threshold = dead_code_threshold
        self.usage_decay = usage_decay
        # no biases: a bias lets the commitment loss win by pointing every input at one code (z_e ~ b / |b|)
        self.in_proj = variance_preserving(nn.Linear(dim, codebook_dim, bias=False))
        self.out_proj = variance_preserving(nn.Linear(codebook_dim, dim, bias=False))
        self.codebook = nn.Embedding(codebook_size, codebook_dim)
        # share of assignments each code got, as an exponential moving average over training steps
        self.register_buffer("usage", torch.full((codebook_size,), 1.0 / codebook_size))

    def normalized_codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook.weight, dim=-1)

    def output_codebook(self) -> torch.Tensor:
        """The low-dimensional vector each code stands for: its entry, or with `unit_codes` its direction."""
        return self.normalized_codebook() if self.unit_codes else self.codebook.weight

    def encode(self, residual: torch.Tensor) -> torch.Tensor:
        """[B, T, dim] -> codes [B, T]."""
        z = F.normalize(self.in_proj(residual), dim=-1)
        return (z @ self.normalized_codebook().t()).argmax(dim=-1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, T] -> [B, T, dim]."""
        return self.out_proj(F.embedding(codes, self.output_codebook()))

    def forward(self, residual: torch.Tensor, active: torch.Tensor | None = None):
        """Quantize with a straight-through gradient; returns (output [B,T,dim], codes, commit [B,T], codebook [B,T]).

        In training, codes whose usage fell below `dead_code_threshold` of a fair share are first moved onto
        encoder outputs of this batch (items where `active` [B] is true), so no code stays dead for long."""
        z_e = self.in_proj(residual)
        direction = F.normalize(z_e, dim=-1)
        if self.unit_codes:
            z_e = direction
        track = self.training and self.dead_code_threshold > 0
        if track:
            rows = z_e.detach()[active] if active is not None else z_e.detach()
            self._revive_dead_codes(rows.reshape(-1, rows.shape[-1]))
        codes = (direction.detach() @ self.normalized_codebook().t()).argmax(dim=-1)
        if track:
            self._update_usage(codes[active] if active is not None else codes)
        z_q = F.embedding(codes, self.output_codebook())
        commitment = (z_e - z_q.detach()).pow(2).mean(-1)
        codebook_loss = (z_q - z_e.detach()).pow(2).mean(-1)
        if not self.unit_codes:
            # z_e's length changes neither the code (picked by direction) nor the output (the entry), so the
            # straight-through gradient reaches its direction only: through z_e itself the decoder pushed the
            # length without bound (commitment 0.1 -> 1e4 in 60 steps once the decoder read only the codes)
            z_e = direction * z_q.detach().norm(dim=-1, keepdim=True)
        z_q = z_e + (z_q - z_e).detach()
        return self.out_proj(z_q), codes, commitment, codebook_loss


    @torch.no_grad()
    def _update_usage(self, codes: torch.Tensor) -> None:
        counts = torch.bincount(codes.reshape(-1), minlength=self.codebook_size).float()
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)  # every rank keeps the same usage, so every rank revives the same codes
        total = counts.sum()
        if total > 0:
            self.usage.mul_(self.usage_decay).add_(counts / total, alpha=1 - self.usage_decay)

    @torch.no_grad()
    def _revive_dead_codes(self, candidates: torch.Tensor) -> None:
        """Re-seed dead codes with (slightly jittered) encoder outputs; rank 0 picks them for all ranks."""
        dead = self.usage < self.dead_code_threshold / self.codebook_size
        n = int(dead.sum())
        if n == 0:
            return
        weight = self.codebook.weight
        if candidates.shape[0] > 0:
            picks = candidates[torch.randint(0, candidates.shape[0], (n,), device=candidates.device)].to(weight.dtype)
            new = picks + 0.01 * picks.norm(dim=-1, keepdim=True) * torch.randn_like(picks)
            if self.unit_codes:
                new = F.normalize(new, dim=-1)
        else:
            new = F.normalize(torch.randn(n, weight.shape[1], device=weight.device, dtype=weight.dtype), dim=-1)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(new, src=0)
        weight.data[dead] = new
        self.usage[dead] = 1.0 / self.codebook_size  # a grace period before it can be judged dead again


class ResidualVectorQuantizer(nn.Module):
    """input_dim -> quantizer_dim, K factorized layers on the residual, -> input_dim."""

    def __init__(
        self,
        input_dim: int,
        dim: int,
        num_quantizers: int,
        codebook_size: int,
        codebook_dim: int,
        dropout: float = 0.0,
        dead_code_threshold: float = 0.0,
        usage_decay: float = 0.98,
        unit_codes: bool = False,
    ) -> None:
        super().__init__()
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.dropout = dropout
        # Fraction (1 -> 0) of the continuous latents let through instead of their quantization; the training
        # task ramps it down over the first steps so the decoder learns to use its input before VQ binds it.
        self.bypass = 0.0
        self.input_proj = variance_preserving(nn.Linear(input_dim, dim))
        self.output_proj = variance_preserving(nn.Linear(dim, input_dim))
        self.layers = nn.ModuleList(
            FactorizedVectorQuantizer(dim, codebook_size, codebook_dim, dead_code_threshold, usage_decay, unit_codes)
            for _ in range(num_quantizers)
        )

    def check_num_quantizers(self, n: int | None) -> int:
        if n is None:
            return self.num_quantizers
        if isinstance(n, (torch.Tensor, np.integer)) and not isinstance(n, bool) and np.ndim(n) == 0 and not torch.is_floating_point(torch.as_tensor(n)):
            n = int(n)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= self.num_quantizers:
            raise ValueError(f"num_quantizers must be an integer in 1..{self.num_quantizers}, got {n!r}")
        return n

    @torch.no_grad()
    def encode(self, x: torch.Tensor, num_quantizers: int | None = None) -> torch.Tensor:
        """x [B, T, input_dim] -> codes [B, K, T]."""
        n = self.check_num_quantizers(num_quantizers)
        residual = self.input_proj(x)
        codes = []
        for layer in self.layers[:n]:
            c = layer.encode(residual)
            residual = residual - layer.decode(c)
            codes.append(c)
        return torch.stack(codes, dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T] (any K <= num_quantizers) -> [B, T, input_dim]."""
        if codes.dim() != 3:
            raise ValueError(f"audio_codes must be [batch, num_quantizers, frames], got shape {tuple(codes.shape)}")
        k = self.check_num_quantizers(codes.shape[1])
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.codebook_size):
            raise ValueError(f"audio_codes must lie in 0..{self.codebook_size - 1}")
        out = self.layers[0].decode(codes[:, 0])
        for i in range(1, k):
            out = out + self.layers[i].decode(codes[:, i])
        return self.output_proj(out)

    @torch.no_grad()
    def calibrate_fresh_layers(self, latents: torch.Tensor) -> list[float]:
        """Make freshly initialised DAC-style layers start by taking part of their residual away. At random init a
        layer's output is a random vector ~16x the residual it quantizes, so the residual grows down the chain and
        the VQ losses and gradients explode (NaN in 65 steps on the CPU recipe). Each layer's `out_proj` becomes
        its `in_proj` transposed (whose rows are near orthonormal, so out(in(r)) is r's projection on the layer's
        subspace) and its entries get the median length of the projected residual on `latents` [..., dim].
        Returns those lengths, layer by layer."""
        if any(layer.unit_codes for layer in self.layers):
            raise ValueError("calibrate_fresh_layers: unit-code layers output unit vectors; nothing to calibrate")
        residual = latents.reshape(-1, latents.shape[-1])
        scales = []
        for layer in self.layers:
            layer.out_proj.weight.copy_(layer.in_proj.weight.t())
            scale = float(layer.in_proj(residual).norm(dim=-1).median().clamp_min(1e-3))
            layer.codebook.weight.copy_(layer.normalized_codebook() * scale)
            residual = residual - layer.decode(layer.encode(residual))
            scales.append(scale)
        return scales

    @torch.no_grad()
    def release_unit_codes(self, latents: torch.Tensor) -> list[float]:
        """Turn `unit_codes` layers into DAC's kind without changing what the quantizer computes, so a new run can
        start from weights trained with unit codes. Each layer's entries become its unit vectors times the median
        length of its projected residual on `latents` [..., dim] (what the commitment loss will compare them with),
        and its output projection is divided by that length. Returns the lengths, layer by layer."""
        if not all(layer.unit_codes for layer in self.layers):
            raise ValueError("release_unit_codes: the quantizer's layers do not all output unit codes")
        residual = latents.reshape(-1, latents.shape[-1])
        scales = []
        for layer in self.layers:
            step = layer.decode(layer.encode(residual))
            scale = float(layer.in_proj(residual).norm(dim=-1).median().clamp_min(1e-3))
            layer.codebook.weight.copy_(layer.normalized_codebook() * scale)
            layer.out_proj.weight.div_(scale)
            layer.unit_codes = False
            residual = residual - step
            scales.append(scale)
        return scales

    def unquantized(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output [..., input_dim] -> what the decoder would read with no quantization error (the path
        `bypass` blends in during training): for diagnosing whether the codes limit a model."""
        return self.output_proj(self.input_proj(x))

    def forward(self, x: torch.Tensor, num_quantizers: int | None = None) -> QuantizerOutput:
        """Training/analysis pass. In training mode, a `dropout` fraction of items keeps a random number
        of layers (1..K); the layers they skip still run but contribute and are penalised zero, so every
        parameter takes part in every step (no DDP unused-parameter errors). The VQ losses are means over
        each item's active layers, so their weights do not grow with the number of codebooks."""
        n = self.check_num_quantizers(num_quantizers)
        b, t, _ = x.shape
        latents = self.input_proj(x)
        keep = torch.full((b,), n, device=x.device)
        if self.training and self.dropout > 0:
            random_n = torch.randint(1, n + 1, (b,), device=x.device)
            use_random = torch.rand(b, device=x.device) < self.dropout
            keep = torch.where(use_random, random_n, keep)
        residual = latents
        quantized = torch.zeros_like(latents)
        commitment = latents.new_zeros(b)
        codebook = latents.new_zeros(b)
        codes = []
        for i, layer in enumerate(self.layers[:n]):
            active_items = keep > i
            active = active_items.to(latents.dtype)  # [B]
            out, c, commit_i, codebook_i = layer(residual, active_items)
            out = out * active[:, None, None]
            quantized = quantized + out
            residual = residual - out
            commitment = commitment + commit_i.mean(-1) * active
            codebook = codebook + codebook_i.mean(-1) * active
            codes.append(c)
        commitment = (commitment / keep).mean()
        codebook = (codebook / keep).mean()
        # 0 when the layers add up to the latent (with unit_codes the VQ losses above compare directions only)
        energy = latents.detach().pow(2).sum(-1).mean(-1).clamp_min(1e-8)  # [B]
        residual_loss = (residual.pow(2).sum(-1).mean(-1) / energy).mean()
        if self.training and self.bypass > 0:
            quantized = self.bypass * latents + (1 - self.bypass) * quantized
        return QuantizerOutput(
            quantized=self.output_proj(quantized),
            codes=torch.stack(codes, dim=1),
            commitment_loss=commitment,
            codebook_loss=codebook,
            latents=latents,
            residual_loss=residual_loss,
        )


__all__ = ["ResidualVectorQuantizer", "FactorizedVectorQuantizer", "QuantizerOutput"]
