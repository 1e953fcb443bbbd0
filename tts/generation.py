"""Frame-by-frame synthesis with CAT-TTS: a KV-cached temporal step, then the depth Transformer codebook by
codebook (`depth_decoding.DepthStepper`, its own cache), each token drawn with the shared sampling rules of
`training.generation`. Frames come out as soon as they exist, so a streaming codec decoder can turn them into
audio while the rest is generated."""

from __future__ import annotations

from typing import Iterator

import torch

from training.generation import SamplingConfig, sample_next

from .depth_decoding import DepthStepper
from .modeling_tts import CATTTSModel


@torch.no_grad()
def iter_frames(
    model: CATTTSModel,
    text_ids: list[int],
    num_quantizers: int | None = None,
    sampling: SamplingConfig | None = None,
    prompt_codes: torch.Tensor | None = None,
    max_frames: int = 500,
    min_frames: int = 1,
    chars_per_frame: float | None = None,
    prompt_text_included: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield frames [num_quantizers] of codes until the model predicts the end of speech (or max_frames).

    `prompt_codes` [K', P] (K' >= num_quantizers) are frames of a voice prompt that the new frames continue;
    put the prompt's transcript in front of the text for best results. `chars_per_frame` is the speaking rate
    for a model with `aligned_positions` (the prompt's own, when it has a transcript; default: the config's);
    `prompt_text_included=False` says `text_ids` hold no prompt transcript (the text then starts after the prompt)."""
    config = model.config
    k = config.num_quantizers if num_quantizers is None else num_quantizers
    if not 1 <= k <= config.num_quantizers:
        raise ValueError(f"num_quantizers must be in 1..{config.num_quantizers}, got {k}")
    sampling = sampling or SamplingConfig(temperature=0.8, top_p=0.95)
    device = model.audio_start.device
    generator = None
    if sampling.seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(sampling.seed)

    pieces = [model.text_embed(torch.tensor(text_ids, device=device))[None], model.audio_start[None, None]]
    if prompt_codes is not None:
        if prompt_codes.dim() != 2 or prompt_codes.shape[0] < k:
            raise ValueError(f"prompt_codes must be [>= {k} codebooks, frames], got {tuple(prompt_codes.shape)}")
        pieces.append(model.frame_embedding(prompt_codes[None, :k].to(device), k))
    inputs = torch.cat(pieces, dim=1)
    # a prompt without its transcript in front of the text: the text starts where the new frames do
    offset = float(prompt_codes.shape[1]) if prompt_codes is not None and not prompt_text_included else 0.0
    positions = model.temporal_positions(len(text_ids), inputs.shape[1] - len(text_ids) - 1, chars_per_frame, device,
                                         text_offset=offset)
    # an explicit no-padding mask: given neither a mask nor a cache, transformers reads positions that restart
    # (aligned_positions) as packed sequences; the cache made here already prevents that, the mask keeps it so
    out = model.temporal(inputs_embeds=inputs, attention_mask=torch.ones(inputs.shape[:2], dtype=torch.long, device=device),
                         position_ids=positions[None], use_cache=True)
    cache, state, position = out.cache, out.last_hidden_state[:, -1], positions[-1]
    eos = config.end_of_speech_id
    depth = DepthStepper(model)
    for t in range(max_frames):
        frame: list[int] = []
        for level in range(k):
            logits = (depth.start(state) if level == 0 else depth.push(torch.tensor([frame[-1]], device=device)))[0]
            if level == 0 and t < min_frames:
                logits = logits.clone()
                logits[eos] = float("-inf")
            token = int(sample_next(logits, sampling, None, generator))
            if level == 0 and token == eos:
                return
            frame.append(token)
        codes = torch.tensor(frame, device=device)
        yield codes
        step = model.frame_embedding(codes[None, :, None], k)
        position = position + 1
        out = model.temporal(inputs_embeds=step, cache=cache, position_ids=position.reshape(1, 1), use_cache=True)
        cache, state = out.cache, out.last_hidden_state[:, -1]


def generate_codes(model: CATTTSModel, text_ids: list[int], **kwargs) -> torch.Tensor:
    """All frames at once: [num_quantizers, frames] (frames may be 0 only if max_frames is 0)."""
    frames = list(iter_frames(model, text_ids, **kwargs))
    k = kwargs.get("num_quantizers") or model.config.num_quantizers
    if not frames:
        return torch.zeros(k, 0, dtype=torch.long)
    return torch.stack(frames, dim=1)


__all__ = ["iter_frames", "generate_codes"]
