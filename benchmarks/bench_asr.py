"""CAT-ASR on held-out speakers, per number of codebooks, beside PocketSphinx on the same audio.

    python benchmarks/bench_asr.py --model asr/pretrained/cat-asr-small [--beam 4] [--threads 2] [--json out.json]
        [--synthetic CODES_MANIFEST] [--real CODES_MANIFEST]

Sets (codes cached by `catcodec tokenize`, see configs/asr_small_cpu.yaml):
- synthetic: data/synth_tts/val.codes.jsonl, 4 voices never heard in training reading 100 held-out sentences;
- real: data/manifests/val.codes.jsonl, the held-out real speakers' clips that have a transcript.
For each set: word and character error rates of CAT-ASR (greedy at every --num-quantizers, and beam search
at the largest, also joint CTC / attention decoding when --ctc-weight is given), and PocketSphinx's WER on the
original audio; then both per speaker (which voices it cannot read yet). Codes cached by another codec than the
one the model learnt are refused (tokenize the set again). Not a test: figures depend on the model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from asr.decoding import transcribe
from asr.metrics import character_error_rate, error_breakdown
from asr.modeling_asr import CATASRModel
from catcodec.audio import load_audio
from catcodec.codes_file import read_codes
from catcodec.evaluation.asr import PocketsphinxASR
from catcodec.evaluation.asr import normalize_text as plain
from tts.text import TextError, normalize_text


def per_speaker(rows: list[dict], systems: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """WER of each system on each speaker's utterances: {speaker: {system: wer}}."""
    table: dict[str, dict[str, float]] = {}
    for speaker in sorted({r.get("speaker", "?") for r in rows}):
        mine = [i for i, r in enumerate(rows) if r.get("speaker", "?") == speaker]
        refs = [rows[i]["reference"] for i in mine]
        table[speaker] = {name: score(refs, [hyps[i] for i in mine])["wer"] for name, hyps in systems.items()}
    return table


def score(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """WER and CER with case and punctuation ignored on both sides (PocketSphinx writes none), and the WER's
    substitution / deletion / insertion shares (insertions above 1 x the words: a decoder that runs on)."""
    refs, hyps = [plain(r) for r in references], [plain(h) for h in hypotheses]
    words = error_breakdown(refs, hyps, "word")
    kinds = {f"wer_{k}": v for k, v in words.rates().items()}
    return {"wer": words.error_rate, "cer": character_error_rate(refs, hyps), **kinds}


SETS = {"synthetic": "data/synth_tts/val.codes.jsonl", "real": "data/manifests/val.codes.jsonl"}


def load_set(manifest: Path, limit: int | None, codec_weights_id: str = "") -> list[dict]:
    """Rows with a transcript the character set covers, their codes loaded, audio path made absolute. Raises
    SystemExit when the codes were made by other codec weights than `codec_weights_id` (when both are known)."""
    rows = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if not row.get("text") or "codes" not in row:
            continue
        try:
            row["reference"] = normalize_text(row["text"])
        except TextError:
            continue
        cached = read_codes(manifest.parent / row["codes"])
        if codec_weights_id and cached.weights_id and cached.weights_id != codec_weights_id:
            raise SystemExit(f"{manifest}: codes of codec weights {cached.weights_id}, but the model reads those of "
                             f"{codec_weights_id}: catcodec tokenize the set again with that codec")
        row["codes"] = torch.from_numpy(cached.codes.astype(np.int64))
        row["audio"] = str((manifest.parent / row["audio"]).resolve()) if not Path(row["audio"]).is_absolute() else row["audio"]
        rows.append(row)
    if limit is not None and len(rows) > limit:  # spread over the whole set (every voice), not its first speaker
        rows = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, limit).round()]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--num-quantizers", default="1,2,4,8")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--ctc-weight", type=float, default=0.0,
                    help="also decode jointly with the CTC head at this weight (a model trained with CTC)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many utterances per set, evenly spread over it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    for name, path in SETS.items():
        ap.add_argument(f"--{name}", type=Path, default=Path(path), help=f"codes manifest of the {name} set (default: {path})")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = CATASRModel.from_pretrained(args.model).eval()
    levels = [int(n) for n in args.num_quantizers.split(",") if int(n) <= model.config.num_quantizers]
    sphinx = PocketsphinxASR()
    results = {}
    for name in SETS:
        path = getattr(args, name)
        rows = load_set(path, args.limit, model.config.codec_weights_id)
        if not rows:
            print(f"{name}: no usable rows in {path}; skipped")
            continue
        refs = [r["reference"] for r in rows]
        codes = [r["codes"] for r in rows]
        figures: dict[str, dict[str, float]] = {}
        for k in levels:
            start = time.perf_counter()
            hyps = transcribe(model, codes, num_quantizers=k)
            figures[f"cat_asr_q{k}_greedy"] = {**score(refs, hyps), "seconds": time.perf_counter() - start}
        best = f"cat_asr_q{levels[-1]}_greedy"
        if args.beam > 1:
            hyps = transcribe(model, codes, num_quantizers=levels[-1], beam=args.beam)
            best = f"cat_asr_q{levels[-1]}_beam{args.beam}"
            figures[best] = score(refs, hyps)
        if args.ctc_weight > 0:
            hyps = transcribe(model, codes, num_quantizers=levels[-1], beam=args.beam, ctc_weight=args.ctc_weight)
            best = f"cat_asr_q{levels[-1]}_beam{args.beam}_ctc{args.ctc_weight:g}"
            figures[best] = score(refs, hyps)
        sphinx_hyps = [sphinx.transcribe(load_audio(r["audio"], 16000)) for r in rows]
        figures["pocketsphinx"] = score(refs, sphinx_hyps)
        speakers = sorted({r.get("speaker", "?") for r in rows})
        by_speaker = per_speaker(rows, {best: hyps, "pocketsphinx": sphinx_hyps})
        results[name] = {"utterances": len(rows), "speakers": speakers, "figures": figures, "per_speaker_wer": by_speaker,
                         "audio_minutes": sum(float(r.get("duration", 0)) for r in rows) / 60}
        print(f"\n{name}: {len(rows)} utterances, {len(speakers)} held-out speakers, {results[name]['audio_minutes']:.1f} min")
        results[name]["transcripts"] = [{"speaker": r.get("speaker", "?"), "reference": r["reference"], best: h,
                                         "pocketsphinx": s} for r, h, s in zip(rows, hyps, sphinx_hyps)]
        print(f"{'system':28}{'WER':>8}{'CER':>8}   WER = sub + del + ins")
        for system, f in figures.items():
            kinds = " + ".join(f"{100 * f[f'wer_{k}']:.1f}" for k in ("substitutions", "deletions", "insertions"))
            print(f"{system:28}{100 * f['wer']:7.1f}%{100 * f['cer']:7.1f}%   {kinds}")
        print(f"\nWER per speaker{'':21}{best:>22}{'pocketsphinx':>14}")
        for speaker, wers in by_speaker.items():
            print(f"{speaker:36}{100 * wers[best]:21.1f}%{100 * wers['pocketsphinx']:13.1f}%")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, **results}, indent=2))


if __name__ == "__main__":
    main()
