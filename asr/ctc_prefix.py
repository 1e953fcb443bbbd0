"""CTC prefix scores for joint CTC / attention beam search (Watanabe et al. 2017; the recursion of ESPnet's
`CTCPrefixScore`), vectorised over every hypothesis row and every next token.

The prefix score of a character string g is log p_CTC(g is how the transcript starts | audio): the total
probability of the CTC paths whose collapsed output begins with g. It can only fall as g grows, and for g
followed by the end of text it is log p_CTC(g | audio). A beam search adds `weight` x its increments to the
decoder's log-probabilities: a hypothesis with characters the audio does not hold (a decoder running on as a
language model), or that ends before the audio is spoken, pays for it at the step where it goes wrong.
"""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


class CTCPrefixScorer:
    """A `training.generation` prefix scorer over CTC log-probabilities of a batch of items.

    log_probs [N, T, V] (blank = `blank`), lengths [N] valid steps of each item; `stop_token` ends a
    hypothesis (scored with the whole string's CTC probability); `weight` scales every increment."""

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, stop_token: int, weight: float,
                 blank: int = 0) -> None:
        if log_probs.dim() != 3 or lengths.shape != log_probs.shape[:1]:
            raise ValueError(f"log_probs must be [N, T, V] with lengths [N], got {tuple(log_probs.shape)} and {tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > log_probs.shape[1]:
            raise ValueError(f"lengths must be in 1..{log_probs.shape[1]}")
        self.log_probs = log_probs.float()
        self.lengths = lengths.to(log_probs.device)
        self.stop_token, self.weight, self.blank = stop_token, weight, blank
        self.item = torch.zeros(0, dtype=torch.long)

    def start(self, items: torch.Tensor) -> None:
        """One empty hypothesis per row; row r belongs to item items[r]."""
        self.item = items.to(self.log_probs.device)
        x = self.log_probs[self.item]  # [R, T, V]
        blank_run = x[..., self.blank].cumsum(-1)  # all blanks so far
        self.r_nonblank = torch.full_like(blank_run, NEG_INF)  # [R, T]: paths ending in the last character
        self.r_blank = blank_run  # [R, T]: paths ending in a blank
        self.prefix = torch.zeros(len(self.item), device=x.device)  # log prefix probability of each row (empty: 1)
        self.last = torch.full((len(self.item),), -1, dtype=torch.long, device=x.device)
        self._pending: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def step(self) -> torch.Tensor:
        """weight x (prefix score of each row's hypothesis + token - its own) for every token: [R, V]."""
        x = self.log_probs[self.item]  # [R, T, V]
        rows, steps, vocab = x.shape
        valid = torch.arange(steps, device=x.device)[None] < self.lengths[self.item][:, None]  # [R, T]
        # phi(t): paths of g that may be followed by token c at t+1 (not straight after a repeat of g's last char)
        both = torch.logaddexp(self.r_nonblank, self.r_blank)
        phi = both[:, :, None].expand(rows, steps, vocab).clone()  # [R, T, V]
        repeat = self.last >= 0
        phi[repeat, :, self.last[repeat]] = self.r_blank[repeat]
        r_n = torch.full((rows, steps, vocab), NEG_INF, device=x.device)
        r_b = torch.full((rows, steps, vocab), NEG_INF, device=x.device)
        empty = ~repeat
        r_n[empty, 0] = x[empty, 0]
        score = r_n[:, 0].clone()  # [R, V]
        for t in range(1, steps):
            keep = valid[:, t, None]
            n = torch.logaddexp(r_n[:, t - 1], phi[:, t - 1]) + x[:, t]
            b = torch.logaddexp(r_n[:, t - 1], r_b[:, t - 1]) + x[:, t, self.blank, None]
            r_n[:, t] = torch.where(keep, n, r_n[:, t - 1])
            r_b[:, t] = torch.where(keep, b, r_b[:, t - 1])
            score = torch.where(keep, torch.logaddexp(score, phi[:, t - 1] + x[:, t]), score)
        end = (self.lengths[self.item] - 1)[:, None]
        score[:, self.stop_token] = both.gather(1, end)[:, 0]  # the whole string: every path through g and no more
        score[:, self.blank] = NEG_INF  # the blank is not a character
        self._pending = (r_n, r_b, score)
        gain = score - self.prefix[:, None]
        idle = torch.isinf(self.prefix)  # rows the search keeps busy without a hypothesis: they score nothing
        return self.weight * torch.where(idle[:, None], torch.zeros_like(gain), gain)

    def reorder(self, rows: torch.Tensor, tokens: torch.Tensor) -> None:
        """Keep, as the new rows, the hypotheses `rows[i]` extended by `tokens[i]` scored by the last `step`."""
        if self._pending is None:
            raise RuntimeError("reorder needs a step first")
        r_n, r_b, score = self._pending
        rows, tokens = rows.to(r_n.device), tokens.to(r_n.device)
        self.r_nonblank = r_n[rows, :, tokens]
        self.r_blank = r_b[rows, :, tokens]
        self.prefix = score[rows, tokens]
        self.last = tokens.clone()
        self.item = self.item[rows]
        self._pending = None


__all__ = ["CTCPrefixScorer"]
