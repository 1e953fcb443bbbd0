"""CAT codes -> characters with a CAT-ASR model: greedy decoding or beam search, both from `training.generation`,
over a batch of items of different lengths (left-padded prompts, one KV cache). With `ctc_weight` the beam's
n-best list is rescored by the model's CTC head (joint CTC / attention scoring, Watanabe et al. 2017, applied
to whole hypotheses): CTC cannot explain words the audio does not hold, so it curbs a decoder that runs on as a
language model."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from training.generation import BeamSearchConfig, HFBeamDecoder, HFCausalLMDecoder, SamplingConfig, beam_search, generate
from tts.text import MAX_CHARACTERS_PER_SECOND, CharTokenizer

from .configuration_asr import CATASRConfig
from .modeling_asr import CATASRModel

FRAMES_PER_SECOND = 12.5  # of every CAT codec preset
CHARACTERS_PER_FRAME = MAX_CHARACTERS_PER_SECOND / FRAMES_PER_SECOND


def max_characters(num_frames: int, max_positions: int) -> int:
    """Longest transcript decoded for `num_frames` frames: a generous speaking rate, within the model's positions."""
    return max(1, min(math.ceil(CHARACTERS_PER_FRAME * num_frames) + 8, max_positions - num_frames - 1))


def check_decoding(config: CATASRConfig, beam: int, ctc_weight: float) -> None:
    """Refuse decoding settings the model cannot follow (pipelines call it before encoding any audio)."""
    if beam < 1:
        raise ValueError(f"beam must be >= 1, got {beam}")
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
    if ctc_weight > 0 and beam < 2:
        raise ValueError("ctc_weight rescores the beam's hypotheses: it needs beam >= 2")
    if ctc_weight > 0 and config.ctc_weight <= 0:
        raise ValueError("ctc_weight needs a model trained with a CTC head (its config's ctc_weight is 0)")


@torch.no_grad()
def transcribe_ids(
    model: CATASRModel,
    codes: Sequence[torch.Tensor],
    num_quantizers: int | None = None,
    beam: int = 1,
    length_penalty: float = 1.0,
    ctc_weight: float = 0.0,
) -> list[list[int]]:
    """Character ids (without BOS / EOS) of each item of `codes` (each [K' >= num_quantizers, frames >= 1]).

    ctc_weight > 0 (needs beam > 1 and a model trained with a CTC head) picks, among the beam's finished
    hypotheses, the one with the best (1 - ctc_weight) x log p_attention + ctc_weight x log p_CTC."""
    config = model.config
    k = config.num_quantizers if num_quantizers is None else num_quantizers
    if not 1 <= k <= config.num_quantizers:
        raise ValueError(f"num_quantizers must be in 1..{config.num_quantizers}, got {k}")
    check_decoding(config, beam, ctc_weight)
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
    result = beam_search(decoder, search, len(codes))
    if ctc_weight == 0:
        return result.tokens
    log_probs = model.ctc_log_probs(batch, lengths, k)  # [B, T, V]
    steps = lengths * config.ctc_upsample
    return [rescore_with_ctc(n_best, log_probs[i, : int(steps[i])], ctc_weight) for i, n_best in enumerate(result.n_best)]


def rescore_with_ctc(n_best: list[tuple[float, float, list[int]]], log_probs: torch.Tensor, weight: float) -> list[int]:
    """The tokens of the n-best entry (score, summed log-prob, tokens) with the best
    (1 - weight) x its decoder log-prob + weight x its CTC log-likelihood under `log_probs` [T, V]."""
    def joint(entry: tuple[float, float, list[int]]) -> float:
        return (1 - weight) * entry[1] + weight * ctc_log_likelihood(log_probs, entry[2])

    return max(n_best, key=joint)[2]


def ctc_log_likelihood(log_probs: torch.Tensor, ids: list[int]) -> float:
    """log p_CTC(ids | audio) from one item's CTC log-probabilities [T, V] (blank = 0); -inf when too long to fit."""
    if not ids:
        return float(log_probs[:, 0].sum())
    nll = F.ctc_loss(log_probs[:, None], torch.tensor([ids], device=log_probs.device), torch.tensor([log_probs.shape[0]]),
                     torch.tensor([len(ids)]), blank=0, reduction="sum", zero_infinity=False)
    return -float(nll)


def transcribe(model: CATASRModel, codes: Sequence[torch.Tensor], num_quantizers: int | None = None, beam: int = 1,
               tokenizer: CharTokenizer | None = None, ctc_weight: float = 0.0) -> list[str]:
    """The transcript of each item of `codes` (see `transcribe_ids`), as text."""
    tokenizer = tokenizer or CharTokenizer()
    ids = transcribe_ids(model, codes, num_quantizers, beam, ctc_weight=ctc_weight)
    return [" ".join(tokenizer.decode(x).split()) for x in ids]


__all__ = ["CHARACTERS_PER_FRAME", "check_decoding", "ctc_log_likelihood", "max_characters", "rescore_with_ctc", "transcribe_ids", "transcribe"]
