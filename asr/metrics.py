"""Character and word error rates: Levenshtein edits (substitutions, deletions, insertions) over the reference
length, summed over a corpus before dividing (so long utterances weigh more, as in jiwer)."""

from __future__ import annotations

from typing import Sequence


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Fewest substitutions, deletions and insertions that turn `reference` into `hypothesis`."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i]
        for j, h in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def error_rate(references: Sequence[str], hypotheses: Sequence[str], unit: str = "char") -> float:
    """Corpus error rate of `unit` "char" (CER, spaces included) or "word" (WER); with empty references, 0 when
    the hypotheses are empty too, else 1."""
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references for {len(hypotheses)} hypotheses")
    split = (lambda t: list(" ".join(t.split()))) if unit == "char" else str.split
    edits = sum(edit_distance(split(r), split(h)) for r, h in zip(references, hypotheses))
    total = sum(len(split(r)) for r in references)
    return edits / total if total else float(edits > 0)


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return error_rate(references, hypotheses, "char")


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return error_rate(references, hypotheses, "word")


__all__ = ["edit_distance", "error_rate", "character_error_rate", "word_error_rate"]
