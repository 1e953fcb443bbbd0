"""CAT codes -> characters with a CAT-ASR model: greedy decoding or beam search, both from `training.generation`,
over a batch of items of different lengths (left-padded prompts, one KV cache)."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from training.generation import BeamSearchConfig, HFBeamDecoder, HFCausalLMDecoder, SamplingConfig, beam_search, generate
from tts.text import MAX_CHARACTERS_PER_SECOND, CharTokenizer

from .modeling_asr import CATASRModel

FRAMES_PER_SECOND = 12.5  # of every CAT codec preset
CHARACTERS_PER_FRAME = MAX_CHARACTERS_PER_SECOND / FRAMES_PER_SECOND


def max_characters(num_frames: int, max_positions: int) -> int:
    """Longest transcript decoded for `num_frames` frames: a generous speaking rate, within the model's positions."""
    return max(1, min(math.ceil(CHARACTERS_PER_FRAME * num_frames) + 8, max_positions - num_frames - 1))


@torch.no_grad()
def transcribe_ids(
    model: CATASRModel,
    codes: Sequence[torch.Tensor],
    num_quantizers: int | None = None,
    beam: int = 1,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """Character ids (without BOS / EOS) of each item of `codes` (each [K' >= num_quantizers, frames >= 1])."""
    config = model.config
    k = config.num_quantizers if num_quantizers is None else num_quantizers
    if not 1 <= k <= config.num_quantizers:
        raise ValueError(f"num_quantizers must be in 1..{config.num_quantizers}, got {k}")
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if not codes:
        return []
    for item in codes:
        if item.dim() != 2 or item.shape[0] < k or item.shape[1] < 1:
            raise ValueError(f"codes must be [>= {k} codebooks, >= 1 frames], got {tuple(item.shape)}")
    device = model.lm_head.weight.device
    lengths = torch.tensor([item.shape[1] for item in codes])
    batch = torch.zeros(len(codes), k, int(lengths.max()), dtype=torch.long, device=device)
    for i, item in enumerate(codes):
        batch[i, :, : item.shape[1]] = item[:k].to(device=device, dtype=torch.long)
    prompts = model.prompt_embeddings(batch, lengths, k)
    limits = [max_characters(int(n), config.max_positions) for n in lengths]
    eos = CharTokenizer.EOS
    if beam == 1:
        decoder = HFCausalLMDecoder(model.as_causal_lm(), prompt_embeds=prompts)
        sampling = [SamplingConfig(temperature=0, max_new_tokens=m, stop_tokens=(eos,)) for m in limits]
        return generate(decoder, sampling, len(codes)).tokens
    decoder = HFBeamDecoder(model.as_causal_lm(), prompt_embeds=prompts)
    search = [BeamSearchConfig(num_beams=beam, max_new_tokens=m, stop_tokens=(eos,), length_penalty=length_penalty)
              for m in limits]
    return beam_search(decoder, search, len(codes)).tokens


def transcribe(model: CATASRModel, codes: Sequence[torch.Tensor], num_quantizers: int | None = None, beam: int = 1,
               tokenizer: CharTokenizer | None = None) -> list[str]:
    """The transcript of each item of `codes` (see `transcribe_ids`), as text."""
    tokenizer = tokenizer or CharTokenizer()
    return [" ".join(tokenizer.decode(ids).split()) for ids in transcribe_ids(model, codes, num_quantizers, beam)]


__all__ = ["CHARACTERS_PER_FRAME", "max_characters", "transcribe_ids", "transcribe"]
