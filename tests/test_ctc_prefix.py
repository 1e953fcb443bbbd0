"""CTC prefix scores against brute force: every path of a tiny CTC output enumerated and collapsed."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from asr.ctc_prefix import CTCPrefixScorer

BLANK, STOP = 0, 3


def collapse(path: tuple[int, ...]) -> list[int]:
    out, prev = [], None
    for p in path:
        if p != prev and p != BLANK:
            out.append(p)
        prev = p
    return out


def brute_force(log_probs: torch.Tensor, prefix: list[int], whole: bool) -> float:
    """log of the total probability of the paths whose collapse starts with `prefix` (or equals it, `whole`)."""
    steps, vocab = log_probs.shape
    total = 0.0
    for path in itertools.product(range(vocab), repeat=steps):
        out = collapse(path)
        if (out == prefix) if whole else (out[: len(prefix)] == prefix):
            total += math.exp(sum(float(log_probs[t, c]) for t, c in enumerate(path)))
    return math.log(total) if total > 0 else float("-inf")


def random_log_probs(steps: int, vocab: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(steps, vocab, generator=torch.Generator().manual_seed(seed)).mul(1.5).log_softmax(-1)


@pytest.mark.parametrize("hypothesis", [[1], [2, 1], [1, 1], [2, 2, 1]])
def test_prefix_scores_equal_brute_force(hypothesis):
    lp = random_log_probs(5)
    scorer = CTCPrefixScorer(lp[None], torch.tensor([5]), stop_token=STOP, weight=1.0)
    scorer.start(torch.tensor([0]))
    total = 0.0
    for i, token in enumerate(hypothesis):
        gains = scorer.step()[0]
        assert float(gains[BLANK]) == float("-inf")
        assert float(gains[STOP]) == pytest.approx(brute_force(lp, hypothesis[:i], whole=True) - total, abs=1e-4)
        total += float(gains[token])
        assert total == pytest.approx(brute_force(lp, hypothesis[: i + 1], whole=False), abs=1e-4)
        assert float(gains[token]) <= 1e-6  # a longer prefix is never more likely
        scorer.reorder(torch.tensor([0]), torch.tensor([token]))
    ended = total + float(scorer.step()[0, STOP])  # the whole string: its CTC log-likelihood
    assert ended == pytest.approx(brute_force(lp, hypothesis, whole=True), abs=1e-4)


def test_rows_items_padding_and_weight():
    short, long = random_log_probs(3, seed=1), random_log_probs(5, seed=2)
    padded = torch.stack([torch.cat([short, random_log_probs(2, seed=9)]), long])  # garbage after item 0's end
    both = CTCPrefixScorer(padded, torch.tensor([3, 5]), stop_token=STOP, weight=0.5)
    both.start(torch.tensor([1, 0, 0]))  # rows serve items 1, 0, 0
    alone = CTCPrefixScorer(short[None], torch.tensor([3]), stop_token=STOP, weight=0.5)
    alone.start(torch.tensor([0]))
    gains, gains_alone = both.step(), alone.step()
    assert torch.allclose(gains[1], gains_alone[0]) and torch.allclose(gains[2], gains_alone[0])
    assert float(gains[0, 1]) == pytest.approx(0.5 * brute_force(long, [1], whole=False), abs=1e-4)
    both.reorder(torch.tensor([2, 0, 0]), torch.tensor([2, 1, BLANK]))  # row 2 becomes an idle row
    alone.reorder(torch.tensor([0]), torch.tensor([2]))
    gains, gains_alone = both.step(), alone.step()
    assert torch.allclose(gains[0], gains_alone[0])
    assert torch.equal(gains[2], torch.zeros_like(gains[2]))  # idle rows score nothing (and no NaN)
    assert not torch.isnan(gains).any()


def test_errors():
    with pytest.raises(ValueError, match=r"\[N, T, V\]"):
        CTCPrefixScorer(torch.zeros(3, 4), torch.tensor([3]), STOP, 1.0)
    with pytest.raises(ValueError, match="lengths must be in 1..3"):
        CTCPrefixScorer(torch.zeros(1, 3, 4), torch.tensor([4]), STOP, 1.0)
    scorer = CTCPrefixScorer(torch.zeros(1, 3, 4), torch.tensor([3]), STOP, 1.0)
    scorer.start(torch.tensor([0]))
    with pytest.raises(RuntimeError, match="step first"):
        scorer.reorder(torch.tensor([0]), torch.tensor([1]))
