"""The evaluation loop behind `catcodec eval`: CAT at several bitrates and classical codecs, scored alike.

    from catcodec import CATModel
    from catcodec.evaluation import evaluate, write_report
    from training.data import read_manifest

    model = CATModel.from_pretrained("my_model").eval()
    results = evaluate(model, read_manifest("val.jsonl")[:10], num_quantizers=[1, 4, 16], baselines=["opus:6"])
    write_report(results, "eval_out")     # results.json, results.md, results.png

For every item and system everything is compared at 16 kHz against the original read at 16 kHz, sample
by sample, so the signals must line up:

- CAT: the item is read at the model's rate, encoded once with the largest quantizer count (residual VQ:
  the codes of fewer quantizers are a prefix), decoded at each count, trimmed to the input length (the
  decoder pads to whole frames) and resampled to 16 kHz when the model runs at another rate. No delay is
  corrected: the codec is meant to be time-aligned, and a lag it has is a fault the metrics should see.
  The lag cross-correlation finds is still recorded per item (`delay_ms`) as a diagnostic.
- Baselines (Opus, Codec 2): run on the 16 kHz original; their output is delayed by a few ms (Opus look-
  ahead is mostly undone by ffmpeg's pre-skip; Codec 2 lags about 20 ms at 3200/1300 bit/s and 33 ms at
  700C). The delay is measured per item by cross-correlation within +-50 ms
  (:func:`catcodec.evaluation.metrics.estimate_delay`: amplitude envelopes first, then the waveforms),
  undone, and the output trimmed / zero-padded to the reference length.

Metrics per item: PESQ-WB, PESQ-NB (8 kHz), STOI, SI-SDR, multi-scale mel distance, speaker similarity
(Resemblyzer cosine; optional) and, for items with a transcript, the PocketSphinx transcript (WER against
the normalised reference text; the same recogniser on the original audio gives the reference WER). A
metric that raises on an item (PESQ on silence, ...) is recorded as NaN and counted; means skip NaN.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from ..audio import AudioError, load_audio
from .asr import PocketsphinxASR, character_errors, wer_counts
from .baselines import DEFAULT_BASELINES, Baseline, BaselineError, parse_baselines
from .metrics import (
    EVAL_RATE,
    MAX_DELAY_S,
    estimate_delay,
    fit_length,
    mel_distance,
    pesq_nb,
    pesq_wb,
    require,
    resample,
    shift,
    si_sdr,
    speaker_available,
    speaker_embedding,
    cosine,
    stoi,
)

DEFAULT_NUM_QUANTIZERS = (1, 2, 4, 8, 16, 32)
#: Metric keys, in table order (WER is kept apart: it is corpus-level, not a mean over items).
METRICS = ("pesq_wb", "pesq_nb", "stoi", "si_sdr", "mel", "sim")
METRIC_LABELS = {
    "pesq_wb": "PESQ-WB",
    "pesq_nb": "PESQ-NB",
    "stoi": "STOI",
    "si_sdr": "SI-SDR (dB)",
    "mel": "mel distance",
    "sim": "speaker SIM",
    "wer": "WER",
}
#: 16-bit PCM at 16 kHz: the bitrate the table shows for the original audio.
ORIGINAL_KBPS = EVAL_RATE * 16 / 1000

ALIGNMENT_NOTE = (
    "All signals are compared at 16 kHz against the original read at 16 kHz. CAT output is trimmed to the "
    "input length (no delay correction; the measured lag is recorded as delay_ms). Baseline output is "
    f"shifted by its delay measured per item by cross-correlation within +-{MAX_DELAY_S * 1000:g} ms "
    "(amplitude envelopes, then waveforms within +-1 ms when they match) and trimmed / zero-padded to the "
    "reference length."
)


@dataclass(frozen=True)
class Item:
    """One utterance to evaluate."""

    id: str
    audio: str
    text: str | None = None
    speaker: str | None = None


def as_item(entry: Any) -> Item:
    """An :class:`Item` from a manifest entry (``training.data.ManifestEntry``), a dict with an 'audio'
    field, or a bare path."""
    if isinstance(entry, Item):
        return entry
    if isinstance(entry, (str, os.PathLike)):
        return Item(Path(entry).stem, os.fspath(entry))
    get = entry.get if isinstance(entry, dict) else (lambda k, default=None: getattr(entry, k, default))
    audio = os.fspath(get("audio"))
    extra = get("extra") or {}
    ident = get("id") or (extra.get("id") if isinstance(extra, dict) else None) or Path(audio).stem
    text = get("text")
    speaker = get("speaker")
    return Item(str(ident), audio, text if isinstance(text, str) and text.strip() else None, None if speaker is None else str(speaker))


def select_items(entries: Sequence[Any], max_items: int | None) -> list[Any]:
    """At most `max_items` entries spread evenly over the list (first and last included), order kept.
    Manifests are often sorted by source or speaker, so the first N would be a biased sample."""
    entries = list(entries)
    if max_items is None or max_items >= len(entries):
        return entries
    if max_items < 1:
        raise ValueError(f"max_items must be at least 1, got {max_items}")
    if max_items == 1:
        return entries[:1]
    picks = sorted({int(round(i)) for i in np.linspace(0, len(entries) - 1, max_items)})
    return [entries[i] for i in picks]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


class _Scorer:
    """Scores one degraded signal against one reference; a metric that raises is NaN plus a reason."""

    def __init__(self, compute_speaker: bool, asr: PocketsphinxASR | None):
        self.compute_speaker = compute_speaker
        self.asr = asr

    def reference(self, ref: np.ndarray, text: str | None) -> dict[str, Any]:
        info: dict[str, Any] = {"embedding": None, "embedding_error": None, "hyp": None}
        if self.compute_speaker:
            try:
                info["embedding"] = speaker_embedding(ref, EVAL_RATE)
            except Exception as exc:  # noqa: BLE001 - a bad item must not stop the run
                info["embedding_error"] = _why(exc)
        if self.asr is not None and text:
            info["hyp"] = self.asr.transcribe(ref)
        return info

    def score(self, ref: np.ndarray, deg: np.ndarray, ref_info: dict[str, Any], text: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {}
        failures: dict[str, str] = {}
        calls: dict[str, Callable[[], float]] = {
            "pesq_wb": lambda: pesq_wb(ref, deg, EVAL_RATE),
            "pesq_nb": lambda: pesq_nb(ref, deg, EVAL_RATE),
            "stoi": lambda: stoi(ref, deg, EVAL_RATE),
            "si_sdr": lambda: si_sdr(deg, ref),
            "mel": lambda: mel_distance(deg, ref, EVAL_RATE),
        }
        if self.compute_speaker:
            calls["sim"] = lambda: self._similarity(ref_info, deg)
        for key in METRICS:
            if key not in calls:
                row[key] = None  # not computed at all
                continue
            try:
                value = float(calls[key]())
                if not math.isfinite(value):
                    raise ValueError("not a finite number")
            except Exception as exc:  # noqa: BLE001 - recorded per item and counted
                if _is_missing_dependency(exc):
                    raise
                value = float("nan")
                failures[key] = _why(exc)
            row[key] = value
        if self.asr is not None and text:
            hyp = self.asr.transcribe(deg)
            row.update(hyp=hyp, **_wer_fields(text, hyp))
        if failures:
            row["failures"] = failures
        return row

    @staticmethod
    def _similarity(ref_info: dict[str, Any], deg: np.ndarray) -> float:
        if ref_info["embedding"] is None:
            raise ValueError(f"reference: {ref_info['embedding_error']}")
        return cosine(ref_info["embedding"], speaker_embedding(deg, EVAL_RATE))


def _is_missing_dependency(exc: BaseException) -> bool:
    from .metrics import MissingDependency

    return isinstance(exc, MissingDependency)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def evaluate(
    model,
    entries: Iterable[Any],
    num_quantizers: Iterable[int] = DEFAULT_NUM_QUANTIZERS,
    baselines: Iterable[str | Baseline] = DEFAULT_BASELINES,
    *,
    compute_wer: bool = True,
    compute_speaker: bool = True,
    progress: bool = True,
    on_note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate `model` at each quantizer count and each baseline codec on `entries`; returns a JSON-ready
    dict (NaN where a metric failed; :func:`catcodec.evaluation.report.write_report` writes it out).

    `entries`: manifest entries (``training.data.read_manifest``), dicts with 'audio' (and 'text'), or paths.
    `num_quantizers` above the model's maximum are dropped with a note; baselines whose tools are missing
    are skipped with a note; so is speaker similarity when Resemblyzer is not installed. Missing PESQ /
    STOI packages, or PocketSphinx / jiwer with `compute_wer`, raise
    :class:`~catcodec.evaluation.metrics.MissingDependency`. `on_note` is called with each note as it arises.
    """
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message)
        if on_note is not None:
            on_note(message)

    config = model.config
    top = config.num_quantizers
    requested = list(dict.fromkeys(int(n) for n in num_quantizers))
    bad = [n for n in requested if n < 1]
    if bad:
        raise ValueError(f"num_quantizers {bad[0]} is out of range: this model has 1..{top} quantizers")
    levels = sorted(n for n in requested if n <= top)
    dropped = [n for n in requested if n > top]
    if dropped:
        note(f"skipping num_quantizers {', '.join(map(str, dropped))}: this model has at most {top} quantizers")

    specs = parse_baselines(baselines)
    usable: list[Baseline] = []
    for b in specs:
        ok, why = b.available()
        if ok:
            usable.append(b)
        else:
            note(why)
    if not levels and not usable:
        raise ValueError(f"nothing to evaluate: no usable num_quantizers (this model has 1..{top}) and no usable baseline")

    items = [as_item(e) for e in entries]
    if not items:
        raise ValueError("no items to evaluate")

    require("pesq", what="PESQ")
    require("pystoi", what="STOI")
    if compute_speaker and not speaker_available():
        from .metrics import RESEMBLYZER_HINT

        note(f"speaker similarity (SIM) not available: Resemblyzer is not installed; {RESEMBLYZER_HINT}")
        compute_speaker = False
    asr = None
    if compute_wer:
        if any(it.text for it in items):
            require("jiwer", what="word error rate")
            asr = PocketsphinxASR()
        else:
            note("WER not computed: none of the items has a transcript")

    scorer = _Scorer(compute_speaker, asr)
    device = next(model.parameters()).device
    rate = config.sampling_rate
    systems: list[dict[str, Any]] = []
    for n in levels:
        systems.append(
            dict(name=f"CAT q{n}", label=f"CAT q{n}", kind="cat", num_quantizers=n, baseline=None,
                 nominal_kbps=config.bitrate(n) / 1000, bits=0.0, payload_bytes=None, file_bytes=None, items=[])
        )
    for b in usable:
        systems.append(
            dict(name=b.name, label=b.label, kind="baseline", num_quantizers=None, baseline=b.name,
                 nominal_kbps=b.nominal_kbps, bits=0.0, payload_bytes=0, file_bytes=0, items=[])
        )
    original = dict(name="original", label="original (16-bit PCM)", kind="original", nominal_kbps=ORIGINAL_KBPS, items=[])
    done_items: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    baseline_errors: dict[str, list[str]] = {}
    total_seconds = 0.0

    from tqdm import tqdm

    bar = tqdm(items, desc="evaluating", unit="item", file=sys.stderr, dynamic_ncols=True, disable=not progress)
    was_training = model.training
    model.eval()  # inference behaviour (no quantizer dropout); the caller's mode is restored after
    try:
        with torch.inference_mode():
            for item in bar:
                try:
                    wav = load_audio(item.audio, rate)
                    ref = wav.astype(np.float64) if rate == EVAL_RATE else load_audio(item.audio, EVAL_RATE).astype(np.float64)
                except AudioError as exc:
                    skipped.append(dict(id=item.id, audio=item.audio, reason=str(exc)))
                    note(f"skipping item {item.id}: {exc}")
                    continue
                seconds = wav.shape[-1] / rate
                total_seconds += seconds
                done_items.append(dict(id=item.id, audio=item.audio, speaker=item.speaker, text=item.text, duration_s=seconds))
                ref_info = scorer.reference(ref, item.text)
                original["items"].append(dict(item=item.id, hyp=ref_info["hyp"], **_wer_fields(item.text, ref_info["hyp"])))

                if levels:
                    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None, None].to(device)
                    codes = model.encode(x, num_quantizers=max(levels)).audio_codes
                    frames = int(codes.shape[-1])
                for system in systems:
                    if system["kind"] == "cat":
                        n = system["num_quantizers"]
                        out = model.decode(codes[:, :n]).audio_values.reshape(-1)[: wav.shape[-1]].float().cpu().numpy()
                        deg = fit_length(resample(out, rate, EVAL_RATE), ref.shape[0]) if np.isfinite(out).all() else None
                        bits = frames * n * config.bits_per_code
                        system["bits"] += bits
                        row: dict[str, Any] = dict(item=item.id, real_kbps=bits / seconds / 1000)
                        if deg is None:
                            row.update({k: float("nan") for k in METRICS}, failures={"decode": "non-finite output"})
                            system["items"].append(row)
                            continue
                        row["delay_ms"] = estimate_delay(ref, deg) / EVAL_RATE * 1000
                    else:
                        b = Baseline.parse(system["baseline"])
                        row = dict(item=item.id)
                        try:
                            coded = b.run(ref)
                        except (BaselineError, OSError) as exc:
                            baseline_errors.setdefault(b.name, []).append(f"{item.id}: {exc}")
                            row.update({k: float("nan") for k in METRICS}, failures={"codec": str(exc)})
                            system["items"].append(row)
                            continue
                        delay = estimate_delay(ref, coded.audio)
                        deg = shift(coded.audio, delay, ref.shape[0])
                        system["payload_bytes"] += coded.payload_bytes
                        system["file_bytes"] += coded.file_bytes
                        row.update(real_kbps=coded.real_kbps, file_kbps=coded.file_kbps, delay_ms=delay / EVAL_RATE * 1000)
                    row.update(scorer.score(ref, deg, ref_info, item.text))
                    system["items"].append(row)
    finally:
        model.train(was_training)
        bar.close()

    if not done_items:
        raise ValueError(f"none of the {len(items)} items could be read (first: {skipped[0]['reason']})")
    for name, errors in baseline_errors.items():
        note(f"baseline {name} failed on {len(errors)} item(s), recorded as NaN (first: {errors[0]})")

    for system in systems:
        if system["kind"] == "cat":
            system["real_kbps"] = system["bits"] / total_seconds / 1000
        else:
            system["real_kbps"] = system["payload_bytes"] * 8 / total_seconds / 1000 if system["payload_bytes"] else float("nan")
            system["file_kbps"] = system["file_bytes"] * 8 / total_seconds / 1000 if system["file_bytes"] else float("nan")
        for key in ("bits", "payload_bytes", "file_bytes"):
            system.pop(key)
        system["metrics"] = _summarise(system["items"], compute_speaker)
        system["wer"] = _wer_summary(system["items"]) if asr is not None else None
        for key, failed in system["metrics"].items():
            if failed["failed"]:
                note(f"{system['name']}: {METRIC_LABELS[key]} failed on {failed['failed']} of {len(system['items'])} item(s) (NaN, left out of the mean)")
    original["real_kbps"] = ORIGINAL_KBPS
    original["wer"] = _wer_summary(original["items"]) if asr is not None else None

    return dict(
        eval_sampling_rate=EVAL_RATE,
        model=dict(
            weights_source=str(getattr(model, "weights_source", "")),
            untrained="UNTRAINED" in str(getattr(model, "weights_source", "")),
            sampling_rate=rate,
            frame_rate=config.frame_rate,
            codebook_size=config.codebook_size,
            num_quantizers=top,
            config_hash=config.architecture_hash(),
        ),
        settings=dict(
            num_quantizers=levels,
            dropped_num_quantizers=dropped,
            baselines=[b.name for b in specs],
            baselines_run=[b.name for b in usable],
            wer=asr is not None,
            speaker_similarity=compute_speaker,
            max_delay_ms=MAX_DELAY_S * 1000,
        ),
        alignment=ALIGNMENT_NOTE,
        num_items=len(done_items),
        total_seconds=total_seconds,
        items=done_items,
        skipped_items=skipped,
        original=original,
        systems=systems,
        notes=notes,
    )


def _wer_fields(text: str | None, hyp: str | None) -> dict[str, Any]:
    if not text or hyp is None:
        return {}
    counts = wer_counts([text], [hyp])
    char_errors, chars = character_errors(text, hyp)
    return dict(wer_errors=counts.errors, wer_words=counts.words, cer_errors=char_errors, cer_chars=chars)


def _wer_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    scored = [r for r in rows if r.get("wer_words")]
    if not scored:
        return None
    errors = sum(r["wer_errors"] for r in scored)
    words = sum(r["wer_words"] for r in scored)
    chars = sum(r["cer_chars"] for r in scored)
    cer = sum(r["cer_errors"] for r in scored) / chars if chars else float("nan")
    return dict(wer=errors / words, errors=errors, words=words, items=len(scored), cer=cer, chars=chars)


def _summarise(rows: list[dict[str, Any]], with_speaker: bool) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key in METRICS:
        if key == "sim" and not with_speaker:
            continue
        values = [r.get(key) for r in rows]
        valid = [v for v in values if _finite(v)]
        out[key] = dict(
            mean=float(np.mean(valid)) if valid else float("nan"),
            valid=len(valid),
            failed=sum(1 for v in values if v is not None and not _finite(v)),
        )
    return out


__all__ = ["ALIGNMENT_NOTE", "DEFAULT_NUM_QUANTIZERS", "METRICS", "METRIC_LABELS", "Item", "as_item", "evaluate", "select_items"]
