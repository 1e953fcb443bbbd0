"""The generation loop: one token per request per step, until each request stops.

`iter_generate` yields a `StepEvent` as soon as a step's tokens exist (streaming: TTS turns them into audio
while the rest is still being generated); `generate` runs it to the end. Each request has its own sampling
settings and random generator, so a request's output depends only on its own seed, not on its batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import torch

from .decoders import StepDecoder
from .sampling import SamplingConfig, sample_next


@dataclass
class StepEvent:
    step: int  # 0-based index of the new token
    tokens: torch.Tensor  # [B] the token each request got this step (-1 where already finished)
    finished: torch.Tensor  # [B] bool, true once a request has stopped (this step included)


@dataclass
class GenerationResult:
    tokens: list[list[int]] = field(default_factory=list)  # per request, without the stop token
    stop_reason: list[str] = field(default_factory=list)  # "stop_token" | "max_new_tokens"


def _generators(configs: Sequence[SamplingConfig], device: torch.device) -> list[torch.Generator | None]:
    gens = []
    for c in configs:
        if c.seed is None:
            gens.append(None)
        else:
            g = torch.Generator(device=device)
            g.manual_seed(c.seed)
            gens.append(g)
    return gens


def iter_generate(
    decoder: StepDecoder,
    sampling: SamplingConfig | Sequence[SamplingConfig],
    batch_size: int,
    result: GenerationResult | None = None,
) -> Iterator[StepEvent]:
    """Drive `decoder` step by step; fills `result` (if given) as it goes and yields each step."""
    configs = list(sampling) if isinstance(sampling, Sequence) else [sampling] * batch_size
    if len(configs) != batch_size:
        raise ValueError(f"{len(configs)} sampling configs for {batch_size} requests")
    logits = decoder.prefill()
    device = logits.device
    gens = _generators(configs, device)
    history = [torch.zeros(0, dtype=torch.long, device=device) for _ in configs]
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    reasons = [""] * batch_size
    max_steps = max(c.max_new_tokens for c in configs)
    for step in range(max_steps):
        picked = torch.full((batch_size,), -1, dtype=torch.long, device=device)
        for i, c in enumerate(configs):
            if finished[i]:
                continue
            row = logits[i].float()
            if step < c.min_new_tokens and c.stop_tokens:
                row = row.clone()
                row[list(c.stop_tokens)] = float("-inf")
            picked[i] = sample_next(row, c, history[i], gens[i])
        for i, c in enumerate(configs):
            if finished[i]:
                continue
            token = int(picked[i])
            if token in c.stop_tokens:
                finished[i], reasons[i] = True, "stop_token"
                continue
            history[i] = torch.cat([history[i], picked[i : i + 1]])
            if history[i].numel() >= c.max_new_tokens:
                finished[i], reasons[i] = True, "max_new_tokens"
        if result is not None:
            result.tokens = [h.tolist() for h in history]
            result.stop_reason = reasons.copy()
        yield StepEvent(step, picked, finished.clone())
        if bool(finished.all()):
            break
        # finished rows keep being fed (their last token) so shapes stay rectangular; their output is ignored
        feed = torch.where(picked >= 0, picked, torch.zeros_like(picked))
        logits = decoder.step(feed)


def generate(
    decoder: StepDecoder,
    sampling: SamplingConfig | Sequence[SamplingConfig],
    batch_size: int,
    on_step: Callable[[StepEvent], None] | None = None,
) -> GenerationResult:
    """Run to the end; `on_step` (a streaming callback) sees every step as it happens."""
    result = GenerationResult()
    for event in iter_generate(decoder, sampling, batch_size, result):
        if on_step is not None:
            on_step(event)
    return result
