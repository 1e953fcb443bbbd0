"""Distillation losses on tensors: softened KL in both directions, and projected feature matching."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of `values` over the positions where `mask` (same shape) is true (all when None)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def kl_divergence(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
    reverse: bool = False,
) -> torch.Tensor:
    """KL(teacher || student) per position (reverse: KL(student || teacher)) on logits [..., V] divided by
    `temperature`, averaged over `mask` [...], times temperature**2. Zero exactly when the logits are equal."""
    s = F.log_softmax(student_logits.float() / temperature, dim=-1)
    t = F.log_softmax(teacher_logits.float().detach() / temperature, dim=-1)
    p, log_p, log_q = (s.exp(), s, t) if reverse else (t.exp(), t, s)
    per_position = (p * (log_p - log_q)).sum(-1)
    if mask is not None:  # a [B, T] mask also covers [B, T, K] positions (one distribution per codebook)
        while mask.dim() < per_position.dim():
            mask = mask.unsqueeze(-1)
        mask = mask.expand_as(per_position)
    return _masked_mean(per_position, mask) * temperature**2


def feature_matching(
    student: torch.Tensor,
    teacher: torch.Tensor,
    projection: torch.nn.Module | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared error between projected student features [B, T, Ds] and teacher features [B, T, Dt],
    relative to the teacher's mean square (so the figure does not depend on the teacher's scale)."""
    projected = student if projection is None else projection(student)
    target = teacher.detach().to(projected.dtype)
    if projected.shape != target.shape:
        raise ValueError(f"feature_matching: projected student {tuple(projected.shape)} != teacher {tuple(target.shape)}")
    error = (projected - target).pow(2).mean(-1)
    scale = _masked_mean(target.pow(2).mean(-1), mask).clamp(min=1e-8)
    return _masked_mean(error, mask) / scale
