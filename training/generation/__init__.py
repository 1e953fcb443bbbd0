"""Autoregressive generation shared by TTS and ASR: logits processors, sampling, a KV-cached step loop.

    from training.generation import SamplingConfig, generate, iter_generate, HFCausalLMDecoder
    from training.generation import BeamSearchConfig, HFBeamDecoder, beam_search
"""

from .beam import (
    BeamDecoder,
    BeamSearchConfig,
    BeamSearchResult,
    HFBeamDecoder,
    PrefixScorer,
    beam_search,
    normalized_score,
)
from .decoders import FullRecomputeDecoder, HFCausalLMDecoder, StepDecoder
from .loop import GenerationResult, StepEvent, generate, iter_generate
from .sampling import (
    SamplingConfig,
    apply_repetition_penalty,
    sample_next,
    top_k_filter,
    top_p_filter,
)

__all__ = [
    "SamplingConfig",
    "apply_repetition_penalty",
    "top_k_filter",
    "top_p_filter",
    "sample_next",
    "StepDecoder",
    "HFCausalLMDecoder",
    "FullRecomputeDecoder",
    "StepEvent",
    "GenerationResult",
    "generate",
    "iter_generate",
    "BeamDecoder",
    "HFBeamDecoder",
    "BeamSearchConfig",
    "BeamSearchResult",
    "PrefixScorer",
    "beam_search",
    "normalized_score",
]
