"""Word error rate of an offline English recogniser (PocketSphinx) on decoded speech.

PocketSphinx is a small, old recogniser (about 20-30 % WER on clean read speech, far worse on synthetic
voices), so the figure to read is the WER on a codec's output *next to* the WER on the original audio:
the gap is what the codec costs intelligibility. Its US English acoustic model, language model and
dictionary ship inside the ``pocketsphinx`` wheel, so nothing is downloaded.

Text is normalised the same way on both sides before scoring (:func:`normalize_text`): lower case,
apostrophes dropped inside words ("don't" -> "dont"), every other punctuation mark replaced by a space,
numbers left as they are written (no spelling out). :func:`word_error_rate` is corpus-level: the total
of substitutions, deletions and insertions over all pairs, divided by the total number of reference words.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from .metrics import EVAL_RATE, require

_FILLER = re.compile(r"\[[^\]]*\]|<[^>]*>")  # [noise], <sil> markers some recognisers emit
_APOSTROPHE = re.compile(r"(?<=\w)['\u2019](?=\w)")
_NON_WORD = re.compile(r"[^\w\s]|_")


def normalize_text(text: str | None) -> str:
    """Lower case, punctuation stripped, whitespace collapsed; numbers are kept as written."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _FILLER.sub(" ", text)
    text = _APOSTROPHE.sub("", text)
    text = _NON_WORD.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class WERCounts:
    """Edit counts of a set of (reference, hypothesis) pairs; `wer` = errors / reference words."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    words: int = 0  # reference words

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float("nan")

    def __add__(self, other: "WERCounts") -> "WERCounts":
        return WERCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.words + other.words,
        )


def wer_counts(refs, hyps) -> WERCounts:
    """Substitutions, deletions, insertions and reference words over all pairs, after normalisation.
    Pairs whose normalised reference is empty are skipped (they have no words to get wrong)."""
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    pairs = [(normalize_text(r), normalize_text(h)) for r, h in zip(refs, hyps)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return WERCounts()
    total = WERCounts()
    jiwer = require("jiwer", what="word error rate")
    for ref, hyp in pairs:
        if not hyp:  # nothing recognised: every reference word is a deletion
            total += WERCounts(deletions=len(ref.split()), words=len(ref.split()))
            continue
        out = jiwer.process_words(ref, hyp)
        total += WERCounts(out.substitutions, out.deletions, out.insertions, len(ref.split()))
    return total


def character_errors(ref: str | None, hyp: str | None) -> tuple[int, int]:
    """(character edits, reference characters) of one pair after :func:`normalize_text`, spaces included; (0, 0)
    without reference text. Less saturated than WER where a recogniser gets few words right."""
    ref, hyp = normalize_text(ref), normalize_text(hyp)
    if not ref:
        return 0, 0
    if not hyp:
        return len(ref), len(ref)
    out = require("jiwer", what="character error rate").process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref)


def word_error_rate(refs, hyps) -> float:
    """Corpus-level WER of hypotheses against references (strings or lists of strings), both normalised
    with :func:`normalize_text`: total errors / total reference words. NaN when there are no reference words."""
    if isinstance(refs, str):
        refs = [refs]
    if isinstance(hyps, str):
        hyps = [hyps]
    return wer_counts(refs, hyps).wer


class PocketsphinxASR:
    """PocketSphinx with its bundled US English models and default configuration.

    `transcribe` takes 16 kHz mono float audio (samples in -1..1) and returns the recognised words (lower
    case, as PocketSphinx writes them); each utterance starts from the same feature state, so the result does
    not depend on what was transcribed before. Keyword arguments go to ``pocketsphinx.Decoder`` (its log is
    silenced unless `loglevel` is given).
    """

    sampling_rate = EVAL_RATE

    def __init__(self, **config) -> None:
        ps = require("pocketsphinx", what="word error rate")
        config.setdefault("loglevel", "FATAL")
        self._decoder = ps.Decoder(**config)
        rate = int(self._decoder.config["samprate"])
        if rate != EVAL_RATE:
            raise ValueError(f"PocketSphinx is configured for {rate} Hz; transcribe() feeds {EVAL_RATE} Hz audio")

    def transcribe(self, wav16k) -> str:
        """Recognise one utterance of 16 kHz mono audio; '' when nothing is recognised."""
        x = np.asarray(wav16k.detach().cpu().numpy() if hasattr(wav16k, "detach") else wav16k, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return ""
        if not np.isfinite(x).all():
            raise ValueError("audio holds NaN or infinite samples")
        pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
        d = self._decoder
        # its cepstral mean otherwise starts from the last utterance's, so a transcript depended on what was read
        # before it (measured: one held-out clip read "sadly line" after itself, "that blue line" when fresh)
        d.reinit_feat()
        d.start_utt()
        d.process_raw(pcm.tobytes(), no_search=False, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return " ".join(hyp.hypstr.split()) if hyp is not None and hyp.hypstr else ""


__all__ = ["PocketsphinxASR", "WERCounts", "character_errors", "normalize_text", "wer_counts", "word_error_rate"]
