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


def transplant_init_codes(model: nn.Module, init_codes_from: str, learnt_codes_id: str, codec_name: str,
                          num_quantizers: int) -> str:
    """Carry a warm-started code reader's (TTS, ASR) code tables from the codec that made its training codes
    (`init_codes_from`, whose weights id must be `learnt_codes_id` when that is recorded) to the run's codec
    (`codec_name`), through `model.transplant_codes`. Returns the run's codec weights id: the codes it will train on."""
    from catcodec.modeling_cat import CATModel  # here: catcodec's training task imports this module

    old = CATModel.from_pretrained(init_codes_from)
    old_id = old.codes_fingerprint()
    if learnt_codes_id and old_id != learnt_codes_id:
        raise ValueError(f"init_codes_from {init_codes_from} has codec weights {old_id}, but the init_from model learnt "
                         f"the codes of {learnt_codes_id}: give the codec that made its training codes")
    new = CATModel.from_pretrained(codec_name)
    new_id = new.codes_fingerprint()
    if new_id == old_id:
        raise ValueError(f"init_codes_from {init_codes_from} is the run's codec {codec_name}: leave init_codes_from out")
    with torch.no_grad():
        fits = model.transplant_codes(old.code_vectors(num_quantizers), new.code_vectors(num_quantizers))
    log.info("code tables carried from the codes of %s (%s) to those of %s (%s); R^2 of each fit: %s", init_codes_from,
             old_id, codec_name, new_id, ", ".join(f"{name} {r2:.2f}" for name, r2 in fits.items()))
    return new_id


def warm_start_code_reader(model: nn.Module, source: nn.Module, origin: str, init_codes_from: str | None,
                           codec_name: str, num_quantizers: int) -> str:
    """Warm start of a code reader (TTS, ASR) from a saved one: its matching tensors copied, then, with
    `init_codes_from`, its code tables carried to `codec_name`'s codes (`transplant_init_codes`). Returns the codec
    weights id of the codes the model now expects ("" when the source recorded none), for the task to check
    against its data."""
    copy_matching_tensors(model, source.state_dict(), origin=origin)
    codes_id = source.config.codec_weights_id
    if init_codes_from is not None:
        codes_id = transplant_init_codes(model, init_codes_from, codes_id, codec_name, num_quantizers)
    return codes_id


__all__ = ["copy_matching_tensors", "transplant_init_codes", "warm_start_code_reader"]
