"""Tests for catcodec.modules.transformer: RoPE, sliding-window masks, blocked offline attention,
LayerScale/bias conventions, causality and stage-level streaming."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from catcodec.modules.streaming import reset_streaming, streaming
from catcodec.modules.transformer import (
    CausalSelfAttention,
    LayerScale,
    TransformerStage,
    apply_rope,
    offline_attention_plan,
    rope_angles,
    sliding_window_mask,
)

pytestmark = pytest.mark.usefixtures("single_thread")


def _stage(window: int = 8, seed: int = 0, layers: int = 2) -> TransformerStage:
    torch.manual_seed(seed)
    stage = TransformerStage(input_dim=6, dim=16, output_dim=5, num_layers=layers, num_heads=2, window=window)
    # LayerScale starts at 0.01: raise it so the attention branch visibly shapes the output.
    for m in stage.modules():
        if isinstance(m, LayerScale):
            m.scale.data.fill_(1.0)
    return stage.eval()


# ---- RoPE ---------------------------------------------------------------------------------------
def test_rope_preserves_norms():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 50, 16)
    cos, sin = rope_angles(torch.arange(50) * 37, 16, 10000.0, torch.float32)
    assert cos.shape == sin.shape == (50, 8)
    y = apply_rope(x, cos, sin)
    assert y.shape == x.shape
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-5)
    # it is a rotation, not the identity (except at position 0)
    assert not torch.allclose(y[..., 1:, :], x[..., 1:, :], atol=1e-3)
    torch.testing.assert_close(y[..., 0, :], x[..., 0, :])


def test_rope_relative_position_invariance():
    torch.manual_seed(1)
    d = 16
    q = torch.randn(1, 1, 1, d)
    k = torch.randn(1, 1, 1, d)

    def score(pq: int, pk: int) -> float:
        cq, sq = rope_angles(torch.tensor([pq]), d, 10000.0, torch.float32)
        ck, sk = rope_angles(torch.tensor([pk]), d, 10000.0, torch.float32)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    pairs = [(0, 0), (5, 2), (17, 0), (40, 39), (3, 3), (100, 1)]
    scores = []
    for pq, pk in pairs:
        s = score(pq, pk)
        assert abs(s - score(pq + 1000, pk + 1000)) < 1e-4
        assert abs(s - score(pq + 123457, pk + 123457)) < 1e-3  # hours-long streams keep their phases
        scores.append(s)
    # the score genuinely depends on the offset (the test would pass trivially otherwise)
    assert max(scores) - min(scores) > 1e-2


def test_rope_angles_are_float64_exact_for_large_positions():
    pos = torch.tensor([10**7 + 3])
    cos, sin = rope_angles(pos, 8, 10000.0, torch.float32)
    inv0 = 1.0  # first frequency is theta^0
    expected = torch.tensor((10**7 + 3) * inv0, dtype=torch.float64)
    assert abs(float(cos[0, 0]) - float(expected.cos())) < 1e-6
    assert abs(float(sin[0, 0]) - float(expected.sin())) < 1e-6


# ---- masks and the offline plan -----------------------------------------------------------------
def test_sliding_window_mask_hand_case():
    q = torch.tensor([3, 4, 5])
    k = torch.tensor([-1, 1, 2, 3, 4, 5])
    mask = sliding_window_mask(q, k, window=3)
    expected = torch.tensor(
        [
            [False, True, True, True, False, False],
            [False, False, True, True, True, False],
            [False, False, False, True, True, True],
        ]
    )
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)
    # window 1: each query sees only itself; empty slots (-1) never
    assert torch.equal(sliding_window_mask(q, k, 1), torch.tensor([[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]).bool())


@pytest.mark.parametrize("window,length", [(8, 31), (8, 8), (8, 5), (5, 16), (1, 7)])
def test_offline_plan_covers_each_query_once(window, length):
    plan = offline_attention_plan(length, window, torch.device("cpu"))
    covered = torch.zeros(length, dtype=torch.long)
    for p in plan:
        covered[p.q_start : p.q_end] += 1
        assert p.q_end - p.q_start <= window
        assert p.q_end - p.k_start <= 2 * window - 1 or p.mask is None
        assert 0 <= p.k_start <= p.q_start
        if p.mask is not None:
            assert p.mask.shape == (p.q_end - p.q_start, p.q_end - p.k_start)
            # every query sees itself and exactly min(window, q + 1) keys
            q_pos = torch.arange(p.q_start, p.q_end)
            assert torch.equal(p.mask.sum(-1), torch.clamp(q_pos + 1, max=window))
    assert torch.equal(covered, torch.ones(length, dtype=torch.long))
    if length <= window:
        assert len(plan) == 1 and plan[0].mask is None


@pytest.mark.parametrize("window", [8, 5])
def test_blocked_attention_matches_full_mask(window):
    torch.manual_seed(0)
    t = 3 * window + 7
    attn = CausalSelfAttention(dim=16, num_heads=2).eval()
    x = torch.randn(2, t, 16)
    cos, sin = rope_angles(torch.arange(t), 8, 10000.0, torch.float32)
    plan = offline_attention_plan(t, window, x.device)
    assert len(plan) == -(-t // window)
    got = attn(x, cos, sin, plan)

    q, k, v = attn._qkv(x, cos, sin)
    full_mask = sliding_window_mask(torch.arange(t), torch.arange(t), window)
    assert full_mask.sum() == sum(min(window, i + 1) for i in range(t))
    want = attn._merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=full_mask))
    assert got.shape == (2, t, 16)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)

    # and a window longer than the sequence is plain causal attention
    plan_full = offline_attention_plan(t, 10 * t, x.device)
    causal = attn._merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))
    torch.testing.assert_close(attn(x, cos, sin, plan_full), causal, atol=1e-5, rtol=1e-5)
    # the window matters: restricted attention differs from full causal attention
    assert (got - causal).abs().max() > 1e-4


# ---- parameter conventions ----------------------------------------------------------------------
def test_layerscale_init_from_config(make_model):
    model = make_model()
    scales = [m.scale for m in model.modules() if isinstance(m, LayerScale)]
    cfg = model.config
    expected_count = 2 * (sum(cfg.stage_layers) + sum(cfg.decoder_stage_layers))
    assert len(scales) == expected_count
    for s in scales:
        assert torch.equal(s.detach(), torch.full_like(s, 0.01))

    other = make_model(layer_scale_init=0.125)
    for m in other.modules():
        if isinstance(m, LayerScale):
            assert torch.equal(m.scale.detach(), torch.full_like(m.scale, 0.125))


def test_stages_have_no_biases(model):
    stages = [m for m in model.modules() if isinstance(m, TransformerStage)]
    assert len(stages) == 2 * model.config.num_stages
    n_linear = n_norm = 0
    for stage in stages:
        for m in stage.modules():
            if isinstance(m, nn.Linear):
                assert m.bias is None
                n_linear += 1
            elif isinstance(m, nn.LayerNorm):
                assert m.bias is None
                assert torch.equal(m.weight.detach(), torch.ones_like(m.weight))
                n_norm += 1
    layers = sum(model.config.stage_layers) + sum(model.config.decoder_stage_layers)
    assert n_linear == 2 * len(stages) + 4 * layers  # in/out proj + qkv/out/fc_in/fc_out
    assert n_norm == 2 * layers  # pre-norms only: no final norm (it would erase each token's energy)


# ---- causality --------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 7, 8, 9, 16, 23, 38])
def test_stage_is_causal(k):
    stage = _stage(window=8)
    torch.manual_seed(2)
    x = torch.randn(2, 40, 6)
    y = stage(x)
    x2 = x.clone()
    x2[:, k:] = torch.randn(2, 40 - k, 6) * 50
    y2 = stage(x2)
    torch.testing.assert_close(y2[:, :k], y[:, :k], atol=1e-6, rtol=0)
    assert (y2[:, k:] - y[:, k:]).abs().max() > 1e-3


def test_stage_window_limits_the_past():
    """An input more than `window` tokens in the past has no effect on the output at all."""
    window = 8
    stage = _stage(window=window, layers=1)  # one layer: receptive field is exactly the window
    torch.manual_seed(3)
    x = torch.randn(1, 30, 6)
    x2 = x.clone()
    x2[:, 5] += 10.0
    d = (stage(x2) - stage(x)).abs().amax(dim=-1)[0]
    assert torch.all(d[:5] == 0)
    assert torch.all(d[5 : 5 + window] > 1e-4)
    assert torch.all(d[5 + window :] < 1e-6)


# ---- stage-level streaming ---------------------------------------------------------------------
@pytest.mark.parametrize("pieces", [[1] * 40, [3, 8, 1, 20, 8], [40], [17, 23], [7, 9, 11, 13]])
def test_stage_streaming_matches_offline(pieces):
    stage = _stage(window=8)
    torch.manual_seed(4)
    x = torch.randn(2, sum(pieces), 6)
    want = stage(x)
    with torch.no_grad(), streaming(stage, batch_size=2):
        outs, s = [], 0
        for n in pieces:
            outs.append(stage(x[:, s : s + n]))
            s += n
        state = stage._streaming_state
        assert state.offset == sum(pieces)
        cap = stage.ring_capacity
        assert cap >= stage.window
        assert state.slot_positions.shape == (cap,)
        assert state.keys[0].shape == (2, 2, cap, 8)
        # the ring holds exactly the last `capacity` positions
        assert sorted(state.slot_positions.tolist()) == list(range(sum(pieces) - cap, sum(pieces)))
    torch.testing.assert_close(torch.cat(outs, dim=1), want, atol=1e-5, rtol=1e-5)
    assert stage._streaming_state is None and not stage.is_streaming


def test_stage_streaming_rejects_wrong_batch_and_resets():
    stage = _stage(window=4)
    x = torch.randn(1, 10, 6)
    with torch.no_grad(), streaming(stage, batch_size=1):
        with pytest.raises(ValueError, match="batch"):
            stage(torch.randn(2, 3, 6))
        a = stage(x)
        reset_streaming(stage)
        assert stage._streaming_state is None and stage.is_streaming
        b = stage(x)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="batch_size"):
        with streaming(stage, batch_size=0):
            pass
