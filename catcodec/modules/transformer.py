"""Causal Transformer stages of the CAT encoder and decoder.

One `TransformerStage` = input projection -> N pre-LayerNorm blocks (RoPE, causal sliding-window
attention, GELU MLP, LayerScale, no biases) -> output projection. There is deliberately no final
LayerNorm: it would give every token the same energy, erasing loudness between stages and, at the
decoder's end, making every 10 ms output patch equally loud (a first CPU run could not even overfit
one batch with it).
Offline, attention runs in blocks of one window so memory grows linearly with length. Streaming,
each layer keeps its keys and values in a ring buffer of fixed size, so memory stays flat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .streaming import StreamingModule


# ---- rotary position embedding ----------------------------------------------------------------
def rope_angles(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables [T, head_dim/2] for absolute `positions`, computed in float64 so that
    hours-long streams keep exact phases."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of the last dim of x [B, H, T, D] by the angles of each position."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def sliding_window_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int) -> torch.Tensor:
    """Boolean [Tq, Tk] mask, True where query i may see key j: 0 <= q - k < window (k < 0 = empty slot)."""
    delta = q_pos[:, None] - k_pos[None, :]
    return (delta >= 0) & (delta < window) & (k_pos[None, :] >= 0)


@dataclass
class AttentionBlockPlan:
    """One SDPA call of an offline pass: which queries, which keys, and the mask (None = plain causal)."""

    q_start: int
    q_end: int
    k_start: int
    mask: torch.Tensor | None


def offline_attention_plan(length: int, window: int, device: torch.device) -> list[AttentionBlockPlan]:
    """Cut a causal sliding-window attention over `length` tokens into blocks of at most one window of
    queries, each seeing at most 2 * window - 1 keys: memory O(length * window), not O(length^2)."""
    if length <= window:
        return [AttentionBlockPlan(0, length, 0, None)]
    plans = []
    for q_start in range(0, length, window):
        q_end = min(q_start + window, length)
        k_start = max(0, q_start - window + 1)
        q_pos = torch.arange(q_start, q_end, device=device)
        k_pos = torch.arange(k_start, q_end, device=device)
        plans.append(AttentionBlockPlan(q_start, q_end, k_start, sliding_window_mask(q_pos, k_pos, window)))
    return plans


# ---- layers -----------------------------------------------------------------------------------
def variance_preserving(linear: nn.Linear) -> nn.Linear:
    """Mark a projection between stages for N(0, 1/fan_in) init: chains of them keep the signal's scale
    (the usual 0.02 would shrink it ~3x per projection, 10^-4 over a codec's chain of them)."""
    linear.variance_preserving_init = True
    return linear



class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (CaiT); starts small so deep stacks train."""

    def __init__(self, dim: int, init: float) -> None:
        super().__init__()
        self.init_value = init
        self.scale = nn.Parameter(torch.full((dim,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with RoPE and a sliding window, bias-free projections."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _merge_heads(self, y: torch.Tensor) -> torch.Tensor:
        b, h, t, d = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * d))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, plan: list[AttentionBlockPlan]) -> torch.Tensor:
        """Offline pass over a whole sequence x [B, T, D]."""
        q, k, v = self._qkv(x, cos, sin)
        outs = []
        for p in plan:
            kk, vv = k[:, :, p.k_start : p.q_end], v[:, :, p.k_start : p.q_end]
            qq = q[:, :, p.q_start : p.q_end]
            if p.mask is None:
                outs.append(F.scaled_dot_product_attention(qq, kk, vv, is_causal=True))
            else:
                outs.append(F.scaled_dot_product_attention(qq, kk, vv, attn_mask=p.mask))
        return self._merge_heads(outs[0] if len(outs) == 1 else torch.cat(outs, dim=2))

    def forward_cached(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache_k: torch.Tensor,
        cache_v: torch.Tensor,
        slots: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Streaming pass: write this piece's keys/values into the ring slots, then attend over the ring."""
        q, k, v = self._qkv(x, cos, sin)
        cache_k.index_copy_(2, slots, k.detach())
        cache_v.index_copy_(2, slots, v.detach())
        return self._merge_heads(F.scaled_dot_product_attention(q, cache_k, cache_v, attn_mask=mask))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc_in = nn.Linear(dim, hidden, bias=False)
        self.fc_out = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_out(F.gelu(self.fc_in(x)))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm block: x + LS(attn(LN(x))), then x + LS(mlp(LN(x)))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, layer_scale_init: float, eps: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim, eps=eps, bias=False)
        self.attn = CausalSelfAttention(dim, num_heads)
        self.scale_attn = LayerScale(dim, layer_scale_init)
        self.norm_mlp = nn.LayerNorm(dim, eps=eps, bias=False)
        self.mlp = MLP(dim, int(round(mlp_ratio * dim)))
        self.scale_mlp = LayerScale(dim, layer_scale_init)

    def forward(self, x, cos, sin, plan):
        x = x + self.scale_attn(self.attn(self.norm_attn(x), cos, sin, plan))
        return x + self.scale_mlp(self.mlp(self.norm_mlp(x)))

    def forward_cached(self, x, cos, sin, cache_k, cache_v, slots, mask):
        x = x + self.scale_attn(self.attn.forward_cached(self.norm_attn(x), cos, sin, cache_k, cache_v, slots, mask))
        return x + self.scale_mlp(self.mlp(self.norm_mlp(x)))


# ---- a stage ----------------------------------------------------------------------------------
@dataclass
class StageStreamState:
    """What a stage remembers between streaming calls: next position and one ring buffer per layer."""

    offset: int
    slot_positions: torch.Tensor  # [capacity] absolute position held in each slot, -1 when empty
    keys: list[torch.Tensor]  # per layer [B, H, capacity, head_dim]
    values: list[torch.Tensor]

    def nbytes(self) -> int:
        tensors = [self.slot_positions, *self.keys, *self.values]
        return sum(t.numel() * t.element_size() for t in tensors)


class TransformerStage(StreamingModule):
    """Linear in -> causal Transformer blocks -> Linear out, at one token rate.

    `window` is the attention span in tokens. While streaming, input is processed in pieces of at most
    `piece = ceil(window / 4)` tokens and each layer's ring buffer holds `window + piece - 1` entries: what the
    oldest query of a piece may still see, with little beyond it for the attention to skip.
    """

    def __init__(
        self,
        input_dim: int,
        dim: int,
        output_dim: int,
        num_layers: int,
        num_heads: int,
        window: int,
        mlp_ratio: float = 4.0,
        layer_scale_init: float = 0.01,
        rope_theta: float = 10000.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.rope_theta = rope_theta
        self.input_proj = variance_preserving(nn.Linear(input_dim, dim, bias=False))
        self.layers = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, layer_scale_init, eps) for _ in range(num_layers)
        )
        self.output_proj = variance_preserving(nn.Linear(dim, output_dim, bias=False))

    @property
    def stream_piece(self) -> int:
        """Most tokens a streaming step processes at once (longer chunks are cut into such pieces)."""
        return -(-self.window // 4)

    @property
    def ring_capacity(self) -> int:
        return self.window + self.stream_piece - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, T, input_dim] -> [B, T, output_dim]; causal: output t depends on inputs <= t only."""
        if self.is_streaming:
            return self._forward_streaming(x)
        t = x.shape[1]
        h = self.input_proj(x)
        positions = torch.arange(t, device=x.device)
        cos, sin = rope_angles(positions, self.head_dim, self.rope_theta, h.dtype)
        plan = offline_attention_plan(t, self.window, x.device)
        for layer in self.layers:
            h = layer(h, cos, sin, plan)
        return self.output_proj(h)

    # ---- streaming ----
    def _new_state(self, b: int, dtype: torch.dtype, device: torch.device) -> StageStreamState:
        shape = (b, self.num_heads, self.ring_capacity, self.head_dim)
        return StageStreamState(
            offset=0,
            slot_positions=torch.full((self.ring_capacity,), -1, dtype=torch.long, device=device),
            keys=[torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers],
            values=[torch.zeros(shape, dtype=dtype, device=device) for _ in self.layers],
        )

    def _forward_streaming(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self._streaming_batch_size:
            raise ValueError(f"streaming batch size is {self._streaming_batch_size}, got a chunk of batch {x.shape[0]}")
        outs = []
        for piece in x.split(self.stream_piece, dim=1):
            h = self.input_proj(piece)
            if self._streaming_state is None:  # first call: the ring buffers take the activations' dtype
                self._streaming_state = self._new_state(x.shape[0], h.dtype, x.device)
            state: StageStreamState = self._streaming_state
            n = piece.shape[1]
            positions = torch.arange(state.offset, state.offset + n, device=x.device)
            slots = positions % self.ring_capacity
            state.slot_positions[slots] = positions
            mask = sliding_window_mask(positions, state.slot_positions, self.window)
            cos, sin = rope_angles(positions, self.head_dim, self.rope_theta, h.dtype)
            for layer, k, v in zip(self.layers, state.keys, state.values):
                h = layer.forward_cached(h, cos, sin, k, v, slots, mask)
            outs.append(self.output_proj(h))
            state.offset += n
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "TransformerStage",
    "TransformerBlock",
    "CausalSelfAttention",
    "LayerScale",
    "StageStreamState",
    "rope_angles",
    "apply_rope",
    "sliding_window_mask",
    "offline_attention_plan",
    "count_parameters",
    "variance_preserving",
]
