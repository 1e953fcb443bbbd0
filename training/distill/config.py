"""`DistillConfig`: the `distill:` block of a recipe (teacher, loss weights, temperature)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class DistillConfig:
    """What a student learns from a frozen teacher, beside its own task loss.

    teacher: a saved model folder of the same task (loaded by the task, frozen).
    kl / reverse_kl: weights of KL(teacher || student) and KL(student || teacher) on logits softened by
        `temperature` (scaled by temperature**2, after Hinton et al., so gradients keep their size).
    hidden: weight of matching hidden states through a learned projection (student width -> teacher width);
        `hidden_layers` pairs [student_layer, teacher_layer] (indices into the hidden-state lists, -1 = last).
    latent: (codec) weight of matching the teacher's quantizer-input latents through a learned projection.
    audio: (codec) weight of the multi-scale mel distance between student and teacher output audio.
    inherit_quantizer: (codec) the student starts with the teacher's quantizer (codebooks and projections; the
        shapes must match) and an identity latent projection, so it learns to write and read the teacher's codes'
        latent space rather than fitting fresh codebooks first.
    task: weight of the student's own task loss (0 = learn from the teacher only).
    anneal_steps: when > 0, the distillation losses' weights fall linearly to 0 over these first steps, so the
        teacher guides the start and the student's own task decides the end (0 = constant weights).
    """

    teacher: str = ""
    temperature: float = 2.0
    kl: float = 1.0
    reverse_kl: float = 0.0
    hidden: float = 0.0
    hidden_layers: list[list[int]] = dataclasses.field(default_factory=lambda: [[-1, -1]])
    latent: float = 0.0
    audio: float = 0.0
    inherit_quantizer: bool = False
    task: float = 1.0
    anneal_steps: int = 0

    def __post_init__(self) -> None:
        if not self.teacher:
            raise ValueError("distill.teacher is required: the folder of a trained model of the same task")
        if self.temperature <= 0:
            raise ValueError(f"distill.temperature must be > 0, got {self.temperature}")
        for name in ("kl", "reverse_kl", "hidden", "latent", "audio", "task"):
            if getattr(self, name) < 0:
                raise ValueError(f"distill.{name} is a loss weight and must be >= 0, got {getattr(self, name)}")
        if self.anneal_steps < 0:
            raise ValueError(f"distill.anneal_steps must be >= 0, got {self.anneal_steps}")
        self.hidden_layers = [[int(s), int(t)] for s, t in self.hidden_layers]

    def scale_at(self, step: int) -> float:
        """The factor on the distillation losses at training step `step` (1 throughout unless annealed)."""
        if self.anneal_steps <= 0:
            return 1.0
        return max(0.0, 1.0 - step / self.anneal_steps)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "DistillConfig | None":
        """None when the recipe has no `distill:` block; unknown keys are refused by name."""
        if not values:
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown key(s) in distill: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**values)
