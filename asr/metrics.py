"""Character and word error rates: Levenshtein edits (substitutions, deletions, insertions) over the reference
length, summed over a corpus before dividing (so long utterances weigh more, as in jiwer)."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class EditCounts:
    """One fewest-edit alignment's substitutions, deletions (reference units missed) and insertions (units
    the hypothesis adds), and the reference length they are rates of."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0

    def __add__(self, other: "EditCounts") -> "EditCounts":
        return EditCounts(self.substitutions + other.substitutions, self.deletions + other.deletions,
                          self.insertions + other.insertions, self.reference_length + other.reference_length)

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def error_rate(self) -> float:
        """Errors over the reference length; for an empty reference 0 when nothing was inserted, else 1."""
        return self.errors / self.reference_length if self.reference_length else float(self.errors > 0)

    def rates(self) -> dict[str, float]:
        """Each kind over the reference length (they sum to the error rate); all 0 for an empty reference."""
        n = self.reference_length or 1
        return {"substitutions": self.substitutions / n, "deletions": self.deletions / n,
                "insertions": self.insertions / n}


def edit_counts(reference: Sequence, hypothesis: Sequence) -> EditCounts:
    """The kinds of edit in one fewest-edit alignment (ties prefer substitutions, then deletions), whose total
    equals `edit_distance`: which kind dominates tells a recogniser that misreads from one that runs on."""
    rows, cols = len(reference) + 1, len(hypothesis) + 1
    table = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        table[i][0] = i
    for j in range(cols):
        table[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                              table[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]))
    i, j, sub, dele, ins = rows - 1, cols - 1, 0, 0, 0
    while i or j:
        if i and j and table[i][j] == table[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            sub += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif i and table[i][j] == table[i - 1][j] + 1:
            dele, i = dele + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return EditCounts(sub, dele, ins, len(reference))


def error_breakdown(references: Sequence[str], hypotheses: Sequence[str], unit: str = "word") -> EditCounts:
    """Corpus `EditCounts` of `unit` "word" or "char" (split as in `error_rate`)."""
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references for {len(hypotheses)} hypotheses")
    split = (lambda t: list(" ".join(t.split()))) if unit == "char" else str.split
    total = EditCounts()
    for r, h in zip(references, hypotheses):
        total = total + edit_counts(split(r), split(h))
    return total


def error_rate(references: Sequence[str], hypotheses: Sequence[str], unit: str = "char") -> float:
    """Corpus error rate of `unit` "char" (CER, spaces included) or "word" (WER); with empty references, 0 when
    the hypotheses are empty too, else 1."""
    return error_breakdown(references, hypotheses, unit).error_rate


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return error_rate(references, hypotheses, "char")


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    return error_rate(references, hypotheses, "word")


__all__ = ["EditCounts", "edit_counts", "edit_distance", "error_breakdown", "error_rate", "character_error_rate", "word_error_rate"]
