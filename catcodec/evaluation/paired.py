"""Two recognisers' transcripts of the same utterances, compared pair by pair: the corpus WER difference with a
95 % bootstrap interval over utterances (Bisani and Ney 2004, "Bootstrap estimates for confidence intervals in
ASR performance evaluation"), and how many utterances each reads better. On the 60-utterance samples the
benchmarks use, single WER figures swing by several points; the interval says whether a difference is more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .asr import wer_counts


@dataclass(frozen=True)
class PairedWER:
    """WER of `a` and `b` on the same utterances, `b - a` with its bootstrap interval, and per-utterance wins."""

    utterances: int
    wer_a: float
    wer_b: float
    low: float  # 2.5 % quantile of the resampled b - a
    high: float  # 97.5 % quantile
    b_better: int  # utterances where b makes fewer word errors than a
    b_worse: int

    @property
    def difference(self) -> float:
        return self.wer_b - self.wer_a


def paired_wer(refs: Sequence[str], hyps_a: Sequence[str], hyps_b: Sequence[str], resamples: int = 2000,
               seed: int = 0) -> PairedWER:
    """Compare `hyps_b` with `hyps_a` on `refs` (corpus-level WERs; utterances resampled with replacement)."""
    if not (len(refs) == len(hyps_a) == len(hyps_b)):
        raise ValueError(f"{len(refs)} references, {len(hyps_a)} and {len(hyps_b)} hypotheses: need one each")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    a = [wer_counts([r], [h]) for r, h in zip(refs, hyps_a)]
    b = [wer_counts([r], [h]) for r, h in zip(refs, hyps_b)]
    words = np.array([c.words for c in a], dtype=float)
    if not words.sum():
        raise ValueError("no reference has any word to score")
    err_a = np.array([c.errors for c in a], dtype=float)
    err_b = np.array([c.errors for c in b], dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(refs), size=(resamples, len(refs)))
    picked = words[idx].sum(axis=1)
    ok = picked > 0  # a resample of wordless references only has no WER
    diffs = (err_b[idx].sum(axis=1)[ok] - err_a[idx].sum(axis=1)[ok]) / picked[ok]
    low, high = np.quantile(diffs, [0.025, 0.975])
    return PairedWER(len(refs), float(err_a.sum() / words.sum()), float(err_b.sum() / words.sum()), float(low),
                     float(high), int((err_b < err_a).sum()), int((err_b > err_a).sum()))


__all__ = ["PairedWER", "paired_wer"]
