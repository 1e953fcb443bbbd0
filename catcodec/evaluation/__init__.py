"""Evaluation suite for CAT and classical speech codecs: `catcodec eval`.

- :mod:`.metrics`: PESQ-WB / PESQ-NB, STOI, speaker similarity (Resemblyzer), SI-SDR, mel distance, and the
  cross-correlation delay estimate used to time-align external codecs.
- :mod:`.baselines`: Opus (ffmpeg + libopus) and Codec 2 (c2enc / c2dec) as ``Baseline.parse("opus:6")``.
- :mod:`.asr`: PocketSphinx transcripts and corpus-level word error rate.
- :mod:`.paired`: two recognisers' WERs on the same utterances, the difference with a bootstrap interval.
- :mod:`.run`: :func:`evaluate`, the loop over items, bitrates and baselines.
- :mod:`.report`: results.json, results.md (a Markdown table) and results.png.
- :mod:`.spectral_swap`: hybrids of decoded and reference audio (one spectral part from each) that show where
  a codec loses quality (`benchmarks/diagnose_codec_quality.py`).

The scoring packages are optional (``pip install 'catcodec[eval]'``; Resemblyzer separately with
``pip install --no-deps resemblyzer``) and imported only when used.
"""

from .asr import PocketsphinxASR, normalize_text, word_error_rate
from .baselines import DEFAULT_BASELINES, Baseline, BaselineError, parse_baselines
from .metrics import (
    MissingDependency,
    estimate_delay,
    pesq_nb,
    pesq_wb,
    speaker_similarity,
    stoi,
    time_align,
)
from .report import markdown_report, markdown_table, plot, write_report
from .run import DEFAULT_NUM_QUANTIZERS, evaluate, select_items

__all__ = [
    "DEFAULT_BASELINES",
    "DEFAULT_NUM_QUANTIZERS",
    "Baseline",
    "BaselineError",
    "MissingDependency",
    "PocketsphinxASR",
    "estimate_delay",
    "evaluate",
    "markdown_report",
    "markdown_table",
    "normalize_text",
    "parse_baselines",
    "pesq_nb",
    "pesq_wb",
    "plot",
    "select_items",
    "speaker_similarity",
    "stoi",
    "time_align",
    "word_error_rate",
    "write_report",
]
