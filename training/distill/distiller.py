"""`Distiller`: the learned projections and the weighted sum of distillation losses a task adds to its loss.

A task that supports distillation runs the student and the teacher on the same batch, fills a
`DistillSignals` for each (whatever it has: logits, hidden states, quantizer latents, output audio), and adds
`distiller(student, teacher)` to its own loss. The Distiller is a module of the student's optimizer (its
projections learn); the teacher is a `FrozenTeacher` the task keeps apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from .config import DistillConfig
from .losses import feature_matching, kl_divergence


@dataclass
class DistillSignals:
    """What one model produced on a batch; `mask` [B, T] marks the positions that count for logits/hidden."""

    logits: torch.Tensor | None = None  # [B, T, V] (or [B, T, K, V]: one distribution per codebook)
    hidden: list[torch.Tensor] = field(default_factory=list)  # per layer, [B, T, D]
    latents: torch.Tensor | None = None  # codec: quantizer input [B, frames, D]
    audio: torch.Tensor | None = None  # codec: output waveform [B, 1, T]
    mask: torch.Tensor | None = None


class Distiller(nn.Module):
    """Projections student -> teacher width (learned) and the weighted distillation loss."""

    def __init__(
        self,
        config: DistillConfig,
        student_hidden_dim: int | Sequence[int] | None = None,
        teacher_hidden_dim: int | Sequence[int] | None = None,
        student_latent_dim: int | None = None,
        teacher_latent_dim: int | None = None,
        audio_distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.hidden_projections = nn.ModuleList()
        if config.hidden > 0:
            if student_hidden_dim is None or teacher_hidden_dim is None:
                raise ValueError("distill.hidden > 0 needs the student's and the teacher's hidden widths")
            for s, t in config.hidden_layers:  # one width for every layer, or a width per layer (indexed like them)
                s_dim = student_hidden_dim if isinstance(student_hidden_dim, int) else student_hidden_dim[s]
                t_dim = teacher_hidden_dim if isinstance(teacher_hidden_dim, int) else teacher_hidden_dim[t]
                self.hidden_projections.append(nn.Linear(s_dim, t_dim, bias=False))
        self.latent_projection = None
        if config.latent > 0:
            if student_latent_dim is None or teacher_latent_dim is None:
                raise ValueError("distill.latent > 0 needs the student's and the teacher's latent widths")
            self.latent_projection = nn.Linear(student_latent_dim, teacher_latent_dim, bias=False)
        if config.audio > 0 and audio_distance is None:
            raise ValueError("distill.audio > 0 needs an audio distance (the codec task passes its mel loss)")
        self.audio_distance = audio_distance

    def forward(self, student: DistillSignals, teacher: DistillSignals) -> tuple[torch.Tensor, dict[str, float]]:
        """(weighted distillation loss, its parts as floats for the log)."""
        c = self.config
        parts: dict[str, torch.Tensor] = {}
        if c.kl > 0 or c.reverse_kl > 0:
            if student.logits is None or teacher.logits is None:
                raise ValueError("distill.kl / reverse_kl need logits from both student and teacher")
            if c.kl > 0:
                parts["kl"] = c.kl * kl_divergence(student.logits, teacher.logits, c.temperature, student.mask)
            if c.reverse_kl > 0:
                parts["reverse_kl"] = c.reverse_kl * kl_divergence(
                    student.logits, teacher.logits, c.temperature, student.mask, reverse=True
                )
        if c.hidden > 0:
            total = 0.0
            for (s, t), projection in zip(c.hidden_layers, self.hidden_projections):
                total = total + feature_matching(student.hidden[s], teacher.hidden[t], projection, student.mask)
            parts["hidden"] = c.hidden * total / len(self.hidden_projections)
        if c.latent > 0:
            if student.latents is None or teacher.latents is None:
                raise ValueError("distill.latent needs quantizer latents from both student and teacher")
            parts["latent"] = c.latent * feature_matching(student.latents, teacher.latents, self.latent_projection)
        if c.audio > 0:
            if student.audio is None or teacher.audio is None:
                raise ValueError("distill.audio needs output audio from both student and teacher")
            parts["audio"] = c.audio * self.audio_distance(student.audio, teacher.audio.detach())
        if not parts:
            raise ValueError("the distill block enables no loss: set kl, reverse_kl, hidden, latent or audio > 0")
        loss = sum(parts.values())
        return loss, {f"distill_{k}": float(v.detach()) for k, v in parts.items()}
