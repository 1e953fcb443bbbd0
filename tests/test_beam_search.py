"""Beam search of the shared generation module on tiny random Llamas: one beam is greedy, more beams score at
least as well as greedy, scores are the model's own log-probs, batching and cache reordering are exact."""

from __future__ import annotations

import itertools

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from training.generation import (
    BeamSearchConfig,
    FullRecomputeDecoder,
    HFBeamDecoder,
    HFCausalLMDecoder,
    SamplingConfig,
    beam_search,
    generate,
    normalized_score,
)

pytestmark = pytest.mark.usefixtures("single_thread")

VOCAB = 12
STOP = 3


def tiny_lm(vocab: int, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128))
    with torch.no_grad():  # sharper than a fresh init, so that hypotheses really compete
        model.lm_head.weight.mul_(40.0)
    return model.eval()


@pytest.fixture(scope="module")
def lm() -> LlamaForCausalLM:
    return tiny_lm(VOCAB, 0)


def prompts(n: int = 8, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g) for _ in range(n)]


@torch.no_grad()
def sequence_logprob(model, prompt: torch.Tensor, tokens: list[int], stop: int | None) -> float:
    """The model's own log-probability of `tokens` (then `stop`, if given) after `prompt`, recomputed."""
    target = tokens + ([stop] if stop is not None else [])
    ids = torch.cat([prompt, torch.tensor(target[:-1], dtype=torch.long)])[None]
    logp = model(input_ids=ids).logits[0, prompt.numel() - 1 :].float().log_softmax(-1)
    return float(sum(logp[i, t] for i, t in enumerate(target)))


class TokenCost:
    """A stateless prefix scorer: every token costs cost[token] (a toy stand-in for CTC prefix scores)."""

    def __init__(self, cost: torch.Tensor) -> None:
        self.cost, self.rows, self.reorders = cost, 0, 0

    def start(self, items: torch.Tensor) -> None:
        self.rows = len(items)

    def step(self) -> torch.Tensor:
        return -self.cost.expand(self.rows, -1)

    def reorder(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        assert len(rows) == len(tokens) == self.rows
        self.reorders += 1


def test_prefix_scorer_adds_to_the_decoders_log_probabilities(lm):
    ps = prompts(4)
    cfg = BeamSearchConfig(num_beams=3, max_new_tokens=6, stop_tokens=(STOP,), length_penalty=0.0)
    plain = beam_search(HFBeamDecoder(lm, prompt_ids=ps), cfg, len(ps))
    free = beam_search(HFBeamDecoder(lm, prompt_ids=ps), cfg, len(ps), scorer=TokenCost(torch.zeros(VOCAB)))
    assert free.tokens == plain.tokens and free.logprobs == pytest.approx(plain.logprobs)
    cost = torch.linspace(0, 2, VOCAB)
    scorer = TokenCost(cost)
    scored = beam_search(HFBeamDecoder(lm, prompt_ids=ps), cfg, len(ps), scorer=scorer)
    assert scorer.reorders >= 1
    for b, tokens in enumerate(scored.tokens):  # the score is the model's log-prob plus the scorer's gains
        stopped = scored.stop_reason[b] == "stop_token"
        charged = tokens + ([STOP] if stopped else [])
        expected = sequence_logprob(lm, ps[b], tokens, STOP if stopped else None) - float(cost[charged].sum())
        assert scored.logprobs[b] == pytest.approx(expected, abs=1e-3)
    # a prohibitive cost on one token keeps it out of every result
    token = next(t for tokens in plain.tokens for t in tokens)
    banned = torch.zeros(VOCAB)
    banned[token] = 1e4
    avoided = beam_search(HFBeamDecoder(lm, prompt_ids=ps), cfg, len(ps), scorer=TokenCost(banned)).tokens
    assert all(token not in t for t in avoided)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_one_beam_is_greedy(lm, length_penalty):
    ps = prompts(16)
    greedy = generate(HFCausalLMDecoder(lm, prompt_ids=ps), SamplingConfig(temperature=0, max_new_tokens=12,
                                                                           stop_tokens=(STOP,)), len(ps))
    beam = beam_search(HFBeamDecoder(lm, prompt_ids=ps), BeamSearchConfig(num_beams=1, max_new_tokens=12,
                                                                          stop_tokens=(STOP,),
                                                                          length_penalty=length_penalty), len(ps))
    assert beam.tokens == greedy.tokens
    assert beam.stop_reason == greedy.stop_reason
    assert {"stop_token", "max_new_tokens"} == set(greedy.stop_reason)  # both endings are exercised


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
@pytest.mark.parametrize("num_beams", [2, 4])
def test_beam_never_scores_below_greedy(lm, num_beams, length_penalty):
    ps = prompts(12, seed=2)
    greedy = generate(HFCausalLMDecoder(lm, prompt_ids=ps), SamplingConfig(temperature=0, max_new_tokens=10,
                                                                           stop_tokens=(STOP,)), len(ps))
    beam = beam_search(HFBeamDecoder(lm, prompt_ids=ps), BeamSearchConfig(num_beams=num_beams, max_new_tokens=10,
                                                                          stop_tokens=(STOP,),
                                                                          length_penalty=length_penalty), len(ps))
    better = 0
    for p, g_tokens, g_reason, b_tokens, b_reason, b_score in zip(ps, greedy.tokens, greedy.stop_reason, beam.tokens,
                                                                  beam.stop_reason, beam.scores):
        g_stop = STOP if g_reason == "stop_token" else None
        g_len = len(g_tokens) + (g_stop is not None)
        g_score = normalized_score(sequence_logprob(lm, p, g_tokens, g_stop), g_len, length_penalty)
        b_stop = STOP if b_reason == "stop_token" else None
        recomputed = normalized_score(sequence_logprob(lm, p, b_tokens, b_stop), len(b_tokens) + (b_stop is not None),
                                      length_penalty)
        assert b_score == pytest.approx(recomputed, abs=1e-4)  # the reported score is the model's own
        assert b_score >= g_score - 1e-5
        better += b_score > g_score + 1e-4
    assert better > 0  # the search does find better hypotheses than greedy on some prompts


def test_wide_beam_is_exhaustive_search():
    """With beams to spare, beam search returns the best of all sequences (checked by enumeration)."""
    vocab, stop, max_new = 4, 0, 3
    lm = tiny_lm(vocab, 3)
    prompt = torch.tensor([1, 2])
    others = [t for t in range(vocab) if t != stop]
    every = [(list(seq), stop) for n in range(max_new) for seq in itertools.product(others, repeat=n)]
    every += [(list(seq), None) for seq in itertools.product(others, repeat=max_new)]  # cut at max_new_tokens
    scored = [(normalized_score(sequence_logprob(lm, prompt, seq, end), len(seq) + (end is not None), 1.0), seq)
              for seq, end in every]
    best_score, best = max(scored, key=lambda x: x[0])
    result = beam_search(HFBeamDecoder(lm, prompt_ids=[prompt]),
                         BeamSearchConfig(num_beams=64, max_new_tokens=max_new, stop_tokens=(stop,)), 1)
    assert result.tokens[0] == best
    assert result.scores[0] == pytest.approx(best_score, abs=1e-4)


def test_batch_equals_one_by_one(lm):
    ps = prompts(5, seed=4)
    cfg = BeamSearchConfig(num_beams=3, max_new_tokens=9, stop_tokens=(STOP,))
    batched = beam_search(HFBeamDecoder(lm, prompt_ids=ps), cfg, len(ps))
    alone = [beam_search(HFBeamDecoder(lm, prompt_ids=[p]), cfg, 1) for p in ps]
    assert batched.tokens == [a.tokens[0] for a in alone]
    assert batched.scores == pytest.approx([a.scores[0] for a in alone], abs=1e-4)


def test_per_request_limits_and_stop(lm):
    ps = prompts(3, seed=5)
    configs = [BeamSearchConfig(num_beams=2, max_new_tokens=m) for m in (1, 4, 7)]
    result = beam_search(HFBeamDecoder(lm, prompt_ids=ps), configs, 3)
    assert [len(t) for t in result.tokens] == [1, 4, 7]  # no stop token: every request runs to its limit
    assert result.stop_reason == ["max_new_tokens"] * 3
    stopped = beam_search(HFBeamDecoder(lm, prompt_ids=ps), BeamSearchConfig(num_beams=2, max_new_tokens=30,
                                                                             stop_tokens=(STOP,)), 3)
    assert all(STOP not in t for t in stopped.tokens)


def test_reorder_moves_the_cache(lm):
    ps = prompts(3, seed=6)
    order = torch.tensor([2, 0, 2])
    moved = HFBeamDecoder(lm, prompt_ids=ps)
    moved.prefill()
    moved.reorder(order)
    fresh = FullRecomputeDecoder(lm, prompt_ids=[ps[i] for i in order.tolist()])
    fresh.prefill()
    tokens = torch.tensor([5, 1, 7])
    assert torch.allclose(moved.step(tokens), fresh.step(tokens), atol=1e-4)


def test_config_errors(lm):
    with pytest.raises(ValueError, match="num_beams"):
        BeamSearchConfig(num_beams=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        BeamSearchConfig(max_new_tokens=0)
    with pytest.raises(ValueError, match="length_penalty"):
        BeamSearchConfig(length_penalty=-1)
    with pytest.raises(ValueError, match="same num_beams"):
        beam_search(HFBeamDecoder(lm, prompt_ids=prompts(2)), [BeamSearchConfig(num_beams=1), BeamSearchConfig()], 2)
    with pytest.raises(ValueError, match="configs for"):
        beam_search(HFBeamDecoder(lm, prompt_ids=prompts(2)), [BeamSearchConfig()], 2)
