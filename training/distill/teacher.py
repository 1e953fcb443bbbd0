"""A frozen teacher: no gradients, always in eval mode, excluded from optimizers and checkpoints."""

from __future__ import annotations

import torch
from torch import nn


class FrozenTeacher:
    """Holds a teacher model outside the student's module tree (so no optimizer, DDP or checkpoint sees it)
    and calls it under `torch.no_grad()` in eval mode."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model.eval().requires_grad_(False)

    def to(self, device: torch.device | str) -> "FrozenTeacher":
        self.model.to(device)
        return self

    def __call__(self, *args, **kwargs):
        self.model.eval()  # stays in eval whatever the trainer does to the student
        with torch.no_grad():
            return self.model(*args, **kwargs)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
