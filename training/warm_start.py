"""Warm starts: a fresh model takes every tensor of a saved one whose name and shape match.

A new run can then continue a finished one (a new learning-rate schedule, more data, a changed recipe) without
resuming its optimizer, and a grown model keeps what the smaller one learnt where the shapes still agree."""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger("training.warm_start")


def copy_matching_tensors(model: nn.Module, source: dict[str, torch.Tensor], origin: str = "the source") -> list[str]:
    """Load into `model` each tensor of `source` with the same name and shape; return the names left fresh.

    Raises when nothing matches: a warm start that copies no tensor is a wrong path, not a fresh run."""
    target = model.state_dict()
    taken = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    if not taken:
        raise ValueError(f"init_from {origin}: no tensor matches the model by name and shape; is it the right kind of model?")
    model.load_state_dict(taken, strict=False)
    fresh = sorted(k for k in target if k not in taken)
    log.info("init_from %s: %d of %d tensors copied; fresh: %s", origin, len(taken), len(target), ", ".join(fresh) or "none")
    return fresh


__all__ = ["copy_matching_tensors"]
