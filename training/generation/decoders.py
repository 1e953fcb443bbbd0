"""Step decoders: what the generation loop drives. `prefill` reads the prompts, `step` extends every row by
one token; both return the logits of the next token [B, V].

`HFCausalLMDecoder` wraps any transformers causal LM (left-padded prompts, KV cache); a task with a
custom model (e.g. the TTS frame decoder) implements the same two methods.
"""

from __future__ import annotations

from typing import Protocol

import torch


class StepDecoder(Protocol):
    def prefill(self) -> torch.Tensor: ...

    def step(self, tokens: torch.Tensor) -> torch.Tensor: ...


def left_pad(prompts: list[torch.Tensor], pad_value: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack prompts of different lengths ([n_i] ids or [n_i, H] embeddings) to the right edge; returns
    (batch, attention_mask [B, n_max]) so that every row's next token sits at the same column."""
    n = max(p.shape[0] for p in prompts)
    rows, mask = [], []
    for p in prompts:
        pad = n - p.shape[0]
        rows.append(torch.cat([p.new_full((pad, *p.shape[1:]), pad_value), p], dim=0))
        mask.append(torch.cat([torch.zeros(pad, dtype=torch.long), torch.ones(p.shape[0], dtype=torch.long)]))
    return torch.stack(rows), torch.stack(mask).to(prompts[0].device)


class HFCausalLMDecoder:
    """Batched, KV-cached decoding of a transformers causal LM from prompts of token ids or embeddings."""

    def __init__(self, model, prompt_ids: list[torch.Tensor] | None = None,
                 prompt_embeds: list[torch.Tensor] | None = None) -> None:
        if (prompt_ids is None) == (prompt_embeds is None):
            raise ValueError("give prompt_ids or prompt_embeds, not both")
        self.model = model
        prompts = prompt_ids if prompt_ids is not None else prompt_embeds
        if not prompts or any(p.shape[0] == 0 for p in prompts):
            raise ValueError("every prompt needs at least one token")
        self.batch, self.mask = left_pad(prompts)
        self.is_embeds = prompt_embeds is not None
        self.cache = None

    def _positions(self) -> torch.Tensor:
        return (self.mask.cumsum(-1) - 1).clamp_min(0)

    @torch.no_grad()
    def prefill(self) -> torch.Tensor:
        key = "inputs_embeds" if self.is_embeds else "input_ids"
        out = self.model(**{key: self.batch}, attention_mask=self.mask, position_ids=self._positions(), use_cache=True)
        self.cache = out.cache
        return out.logits[:, -1]

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        position = self._positions()[:, -1:]
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=position,
                         cache=self.cache, use_cache=True)
        self.cache = out.cache
        return out.logits[:, -1]


class FullRecomputeDecoder(HFCausalLMDecoder):
    """The same decoder without a cache: re-reads the whole sequence every step (the reference for tests)."""

    @torch.no_grad()
    def prefill(self) -> torch.Tensor:
        key = "inputs_embeds" if self.is_embeds else "input_ids"
        return self.model(**{key: self.batch}, attention_mask=self.mask, position_ids=self._positions(),
                          use_cache=False).logits[:, -1]

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.is_embeds:
            new = self.model.get_input_embeddings()(tokens[:, None])
        else:
            new = tokens[:, None]
        self.batch = torch.cat([self.batch, new.to(self.batch.dtype)], dim=1)
        self.mask = torch.cat([self.mask, self.mask.new_ones(self.mask.shape[0], 1)], dim=1)
        key = "inputs_embeds" if self.is_embeds else "input_ids"
        return self.model(**{key: self.batch}, attention_mask=self.mask, position_ids=self._positions(),
                          use_cache=False).logits[:, -1]
