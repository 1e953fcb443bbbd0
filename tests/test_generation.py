"""The shared generation module on a tiny random Llama: cache equality, filters, seeds, batching, streaming."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from training.generation import (
    FullRecomputeDecoder,
    HFCausalLMDecoder,
    SamplingConfig,
    apply_repetition_penalty,
    generate,
    iter_generate,
    sample_next,
    top_k_filter,
    top_p_filter,
)

VOCAB = 50


@pytest.fixture(scope="module")
def lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256))
    return model.eval()


def prompts() -> list[torch.Tensor]:
    return [torch.tensor([3, 14, 15, 9, 2, 6]), torch.tensor([27, 18]), torch.tensor([8, 1, 8, 2, 8])]


def test_greedy_with_cache_equals_without(lm):
    greedy = SamplingConfig(temperature=0, max_new_tokens=20)
    cached = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), greedy, 3)
    full = generate(FullRecomputeDecoder(lm, prompt_ids=prompts()), greedy, 3)
    assert cached.tokens == full.tokens
    assert all(len(t) == 20 for t in cached.tokens)


def test_batched_equals_one_by_one(lm):
    greedy = SamplingConfig(temperature=0, max_new_tokens=12)
    batched = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), greedy, 3).tokens
    alone = [generate(HFCausalLMDecoder(lm, prompt_ids=[p]), greedy, 1).tokens[0] for p in prompts()]
    assert batched == alone
    # sampling with per-request seeds: the same too, whatever the batch around a request
    configs = [SamplingConfig(temperature=1.0, top_k=20, max_new_tokens=12, seed=s) for s in (1, 2, 3)]
    batched = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), configs, 3).tokens
    alone = [generate(HFCausalLMDecoder(lm, prompt_ids=[p]), [c], 1).tokens[0] for p, c in zip(prompts(), configs)]
    assert batched == alone


def test_seeds_reproducible_and_different(lm):
    def run(seed):
        cfg = SamplingConfig(temperature=1.2, max_new_tokens=16, seed=seed)
        return generate(HFCausalLMDecoder(lm, prompt_ids=prompts()[:1]), cfg, 1).tokens[0]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_embedding_prompts_match_id_prompts(lm):
    greedy = SamplingConfig(temperature=0, max_new_tokens=8)
    embed = lm.get_input_embeddings()
    with torch.no_grad():
        as_embeds = [embed(p) for p in prompts()]
    a = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), greedy, 3).tokens
    b = generate(HFCausalLMDecoder(lm, prompt_embeds=as_embeds), greedy, 3).tokens
    assert a == b


def test_stop_tokens_and_min_new_tokens(lm):
    greedy = SamplingConfig(temperature=0, max_new_tokens=20)
    first = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()[:1]), greedy, 1).tokens[0]
    stop = first[3]
    cut = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()[:1]),
                   SamplingConfig(temperature=0, max_new_tokens=20, stop_tokens=(stop,)), 1)
    assert cut.tokens[0] == first[: first.index(stop)]
    assert cut.stop_reason == ["stop_token"]
    # min_new_tokens forbids the stop token early
    late = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()[:1]),
                    SamplingConfig(temperature=0, max_new_tokens=20, min_new_tokens=19, stop_tokens=(stop,)), 1)
    assert len(late.tokens[0]) >= 19 and stop not in late.tokens[0][:19]


def test_streaming_yields_each_step_as_it_happens(lm):
    cfg = SamplingConfig(temperature=0, max_new_tokens=6)
    events = list(iter_generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), cfg, 3))
    assert [e.step for e in events] == list(range(6))
    assert events[-1].finished.all() and not events[0].finished.any()
    final = generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), cfg, 3).tokens
    streamed = torch.stack([e.tokens for e in events], dim=1).tolist()
    assert streamed == final
    seen = []
    generate(HFCausalLMDecoder(lm, prompt_ids=prompts()), cfg, 3, on_step=lambda e: seen.append(e.step))
    assert seen == list(range(6))


def test_top_k_mask():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = top_k_filter(logits, 2)
    assert torch.isfinite(kept).tolist() == [[False, True, False, True, False]]
    assert torch.equal(top_k_filter(logits, None), logits)


def test_top_p_mask():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    assert torch.isfinite(top_p_filter(logits, 0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.8)).tolist() == [True, True, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [True, True, True, False]
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()
    # order of the vocabulary does not matter
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.isfinite(top_p_filter(logits[perm], 0.8)).tolist() == [False, True, False, True]


def test_sampling_respects_filters():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 0.1, 0.2, 3.0, 2.9])
    cfg = SamplingConfig(temperature=1.0, top_k=2)
    draws = {int(sample_next(logits, cfg, generator=g)) for _ in range(200)}
    assert draws == {3, 4}
    assert int(sample_next(logits, SamplingConfig(temperature=0))) == 3


def test_repetition_penalty():
    logits = torch.tensor([2.0, -1.0, 0.5])
    out = apply_repetition_penalty(logits, torch.tensor([0, 1]), 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5]
    assert torch.equal(apply_repetition_penalty(logits, torch.tensor([0]), 1.0), logits)
    # greedy with a strong penalty never repeats a token
    assert int(sample_next(torch.tensor([5.0, 4.0]), SamplingConfig(temperature=0, repetition_penalty=10.0),
                           torch.tensor([0]))) == 1


def test_config_errors():
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)
    with pytest.raises(ValueError, match="temperature"):
        SamplingConfig(temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        SamplingConfig(top_k=0)
    with pytest.raises(ValueError, match="at least one token"):
        HFCausalLMDecoder(None, prompt_ids=[torch.tensor([], dtype=torch.long)])


def test_cached_logits_equal_recomputed_logits(lm):
    """Stronger than token equality (a random tiny LM rarely flips an argmax): the logits themselves match."""
    cached = HFCausalLMDecoder(lm, prompt_ids=prompts())
    full = FullRecomputeDecoder(lm, prompt_ids=prompts())
    a, b = cached.prefill(), full.prefill()
    assert torch.allclose(a, b, atol=1e-5)
    g = torch.Generator().manual_seed(0)
    for _ in range(6):
        tokens = torch.randint(0, VOCAB, (3,), generator=g)
        a, b = cached.step(tokens), full.step(tokens)
        assert torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())
