"""Knowledge distillation shared by every task: a `distill:` block in a recipe names a frozen teacher and the
weights of the losses (softened KL both ways, projected hidden states, codec latents and output audio)."""

from .config import DistillConfig
from .distiller import DistillSignals, Distiller
from .losses import feature_matching, kl_divergence
from .teacher import FrozenTeacher

__all__ = ["DistillConfig", "DistillSignals", "Distiller", "FrozenTeacher", "feature_matching", "kl_divergence"]
