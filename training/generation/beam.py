"""Beam search over a KV-cached step decoder: the `num_beams` best hypotheses of each request advance in
parallel rows, and the one with the best length-normalised log-probability wins.

    decoder = HFBeamDecoder(model, prompt_ids=prompts)        # a decoder whose rows can be reordered
    result = beam_search(decoder, BeamSearchConfig(num_beams=4, stop_tokens=(eos,)), len(prompts))

Each step scores every (beam, next token) pair, keeps the 2 x num_beams best, turns the stop tokens among the
first num_beams into finished hypotheses and keeps the best others alive. A request is done when no live beam
can still beat its best finished hypothesis (exact with length_penalty 0; with a positive penalty, judged at
its current length, as transformers does), or at max_new_tokens.

Plain beam search can end below greedy decoding (the greedy path may fall out of the beam), so with more than
one beam each request also runs one greedy row beside its beams, and its hypothesis competes with theirs:
the result never scores below greedy, at the cost of one more row. With one beam this is exactly greedy.

A `PrefixScorer` (optional) adds its own score of every (hypothesis, next token) to the decoder's
log-probability, e.g. CTC prefix scores in joint CTC / attention decoding (`asr.ctc_prefix`); hypotheses are
then ranked by the sum, and the greedy row still follows the decoder alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import torch

from .decoders import HFCausalLMDecoder, StepDecoder


class BeamDecoder(StepDecoder, Protocol):
    def reorder(self, rows: torch.Tensor) -> None:
        """Make row i continue what row rows[i] was (rows may repeat: that duplicates a hypothesis)."""


class PrefixScorer(Protocol):
    """Scores extensions of the search's hypotheses besides the decoder; its rows follow the decoder's."""

    def start(self, items: torch.Tensor) -> None:
        """One empty hypothesis per row; row r serves request items[r]."""

    def step(self) -> torch.Tensor:
        """[rows, vocab]: what each row's hypothesis gains (<= 0) by each next token."""

    def reorder(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        """Row i now holds the hypothesis of row rows[i] extended by tokens[i]."""


class HFBeamDecoder(HFCausalLMDecoder):
    """`HFCausalLMDecoder` whose rows can be duplicated and reordered: the KV cache and the mask follow."""

    def reorder(self, rows: torch.Tensor) -> None:
        rows = rows.to(self.mask.device)
        self.mask = self.mask.index_select(0, rows)
        self.batch = self.batch.index_select(0, rows.to(self.batch.device))
        if self.cache is not None:
            self.cache.reorder_cache(rows)


@dataclass
class BeamSearchConfig:
    """How one request is searched. Score of a hypothesis: sum of log-probs / length ** length_penalty
    (length counts the stop token when there is one; length_penalty 0 = the plain sum)."""

    num_beams: int = 4
    max_new_tokens: int = 256
    stop_tokens: tuple[int, ...] = ()
    length_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.length_penalty < 0:
            raise ValueError(f"length_penalty must be >= 0, got {self.length_penalty}")
        self.stop_tokens = tuple(int(t) for t in self.stop_tokens)


@dataclass
class BeamSearchResult:
    tokens: list[list[int]] = field(default_factory=list)  # best hypothesis per request, without the stop token
    scores: list[float] = field(default_factory=list)  # its length-normalised log-probability
    logprobs: list[float] = field(default_factory=list)  # its summed log-probability (stop token included)
    stop_reason: list[str] = field(default_factory=list)  # "stop_token" | "max_new_tokens"


def normalized_score(logprob: float, length: int, length_penalty: float) -> float:
    """Summed log-probability divided by length ** length_penalty (what beam search ranks by)."""
    return logprob / max(length, 1) ** length_penalty


@dataclass
class _Hypothesis:
    score: float  # length-normalised
    logprob: float  # summed
    tokens: list[int]
    reason: str


@dataclass
class _Request:
    """One request's search: live beams (summed log-prob, tokens), best first; the greedy row; what ended."""

    config: BeamSearchConfig
    beams: list[tuple[float, list[int]]]
    greedy: tuple[float, list[int]] | None
    finished: list[_Hypothesis] = field(default_factory=list)
    done: bool = False

    def finish(self, logprob: float, tokens: list[int], stopped: bool) -> None:
        length = len(tokens) + stopped
        score = normalized_score(logprob, length, self.config.length_penalty)
        self.finished.append(_Hypothesis(score, logprob, tokens, "stop_token" if stopped else "max_new_tokens"))

    def settle(self) -> None:
        """Done once the greedy row has ended and no live beam can still beat the best finished hypothesis."""
        if self.greedy is not None:
            return
        if self.finished and self.beams:
            best = max(h.score for h in self.finished)
            lp = self.config.length_penalty
            self.done = all(normalized_score(s, len(t), lp) <= best for s, t in self.beams)
        else:
            self.done = not self.beams


@torch.no_grad()
def beam_search(
    decoder: BeamDecoder,
    config: BeamSearchConfig | Sequence[BeamSearchConfig],
    batch_size: int,
    scorer: PrefixScorer | None = None,
) -> BeamSearchResult:
    """Search every request of `decoder` (batch_size prompts) at once; one config, or one per request.

    With a `scorer` a hypothesis's log-probability (`logprobs`, and what `scores` normalise) includes the
    scorer's gains."""
    configs = list(config) if isinstance(config, Sequence) else [config] * batch_size
    if len(configs) != batch_size:
        raise ValueError(f"{len(configs)} beam search configs for {batch_size} requests")
    width = configs[0].num_beams
    if any(c.num_beams != width for c in configs):
        raise ValueError("every request of one beam search needs the same num_beams")
    lanes = width + (width > 1)  # beam rows, then the greedy row
    requests = [_Request(c, beams=[(0.0, [])], greedy=(0.0, []) if width > 1 else None) for c in configs]
    logits = decoder.prefill().float()
    device = logits.device
    decoder.reorder(torch.arange(batch_size, device=device).repeat_interleave(lanes))
    if scorer is not None:
        scorer.start(torch.arange(batch_size, device=device).repeat_interleave(lanes))
    logits = logits.repeat_interleave(lanes, dim=0)
    for step in range(max(c.max_new_tokens for c in configs)):
        vocab = logits.shape[-1]
        logp = logits.log_softmax(-1).view(batch_size, lanes, vocab)
        if scorer is not None:
            logp = logp + scorer.step().to(logp).view(batch_size, lanes, vocab)
        scores = torch.full((batch_size, width), float("-inf"), device=device)
        for b, r in enumerate(requests):
            scores[b, : len(r.beams)] = torch.tensor([s for s, _ in r.beams])
        candidates = (scores[:, :, None] + logp[:, :width]).view(batch_size, -1)
        top_scores, top_ids = candidates.topk(min(2 * width, width * vocab), dim=-1)
        greedy_tokens = logits.view(batch_size, lanes, vocab)[:, -1].argmax(-1).tolist()
        rows, feed = [], []
        for b, r in enumerate(requests):
            c = r.config
            live: list[tuple[float, int, int]] = []  # (summed log-prob, source beam, token)
            if not r.done:
                for rank, (s, idx) in enumerate(zip(top_scores[b].tolist(), top_ids[b].tolist())):
                    if s == float("-inf") or len(live) == width:
                        break
                    beam, token = divmod(idx, vocab)
                    if token not in c.stop_tokens:
                        live.append((s, beam, token))
                    elif rank < width:  # an ending counts only among the best num_beams (as in transformers)
                        r.finish(s, r.beams[beam][1], stopped=True)
                r.beams = [(s, r.beams[beam][1] + [token]) for s, beam, token in live]
                if r.greedy is not None:
                    token = greedy_tokens[b]
                    s = r.greedy[0] + float(logp[b, -1, token])
                    if token in c.stop_tokens:
                        r.finish(s, r.greedy[1], stopped=True)
                        r.greedy = None
                    else:
                        r.greedy = (s, r.greedy[1] + [token])
                if step + 1 >= c.max_new_tokens:  # what is still alive ends here, unfinished
                    for s, tokens in r.beams + ([r.greedy] if r.greedy is not None else []):
                        r.finish(s, tokens, stopped=False)
                    r.beams, r.greedy = [], None
                r.settle()
            # one row per lane; lanes without a hypothesis (or a finished request) idle on row 0, token 0
            sources = [beam for _, beam, _ in live] if not r.done else []
            tokens = [t for _, _, t in live] if not r.done else []
            sources += [0] * (width - len(sources))
            tokens += [0] * (width - len(tokens))
            if lanes > width:
                sources.append(width)
                tokens.append(r.greedy[1][-1] if r.greedy is not None and not r.done else 0)
            rows += [b * lanes + j for j in sources]
            feed += tokens
        if all(r.done for r in requests):
            break
        decoder.reorder(torch.tensor(rows, device=device))
        if scorer is not None:
            scorer.reorder(torch.tensor(rows, device=device), torch.tensor(feed, device=device))
        logits = decoder.step(torch.tensor(feed, device=device)).float()
    result = BeamSearchResult()
    for r in requests:
        best = max(r.finished, key=lambda h: h.score)
        result.tokens.append(best.tokens)
        result.scores.append(best.score)
        result.logprobs.append(best.logprob)
        result.stop_reason.append(best.reason)
    return result


__all__ = ["BeamDecoder", "HFBeamDecoder", "PrefixScorer", "BeamSearchConfig", "BeamSearchResult", "beam_search", "normalized_score"]
