"""Two CAT-ASR models compared on the same utterances, from the JSON files `bench_asr.py --json` wrote:
per set, both WERs, the difference with its 95 % bootstrap interval, and how many utterances each reads better.

    python benchmarks/compare_asr_runs.py --base run9_s1.json run9_s2.json --new run11_s1.json run11_s2.json

Files pair up in order (the i-th --base with the i-th --new: the same sample, e.g. `--limit 60` and the
second sample); their utterances are pooled, so two 60-item samples give one 120-item comparison. The
system compared is the best decoding each file recorded (beam + joint CTC when run); `--system` picks another.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from catcodec.evaluation.paired import paired_wer


def best_system(rows: list[dict]) -> str:
    """The CAT-ASR column a bench_asr transcript row holds (the decoding it reported last)."""
    names = [k for k in rows[0] if k.startswith("cat_asr_")]
    if len(names) != 1:
        raise SystemExit(f"cannot tell the system from the columns {sorted(rows[0])}: name one with --system")
    return names[0]


def pooled(pairs: list[tuple[Path, dict, Path, dict]], set_name: str, system: str | None):
    """(references, base hypotheses, new hypotheses, speakers) of one set over every (path, results) pair."""
    refs, hyps_a, hyps_b, speakers = [], [], [], []
    for a_path, a_results, b_path, b_results in pairs:
        a, b = a_results.get(set_name), b_results.get(set_name)
        if a is None or b is None:
            continue
        rows_a, rows_b = a["transcripts"], b["transcripts"]
        if [r["reference"] for r in rows_a] != [r["reference"] for r in rows_b]:
            raise SystemExit(f"{a_path} and {b_path} hold different {set_name} utterances: they are not one sample")
        col_a, col_b = system or best_system(rows_a), system or best_system(rows_b)
        refs += [r["reference"] for r in rows_a]
        hyps_a += [r[col_a] for r in rows_a]
        hyps_b += [r[col_b] for r in rows_b]
        speakers += [r.get("speaker", "?") for r in rows_a]
    return refs, hyps_a, hyps_b, speakers


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, nargs="+", required=True, help="bench_asr JSON files of the model to beat")
    ap.add_argument("--new", type=Path, nargs="+", required=True, help="the candidate's, same samples, same order")
    ap.add_argument("--system", default=None, help="transcript column to compare (default: the one CAT-ASR column)")
    ap.add_argument("--resamples", type=int, default=2000)
    args = ap.parse_args(argv)
    if len(args.base) != len(args.new):
        ap.error(f"{len(args.base)} --base files but {len(args.new)} --new files: give one of each per sample")

    pairs = [(a, json.loads(a.read_text()), b, json.loads(b.read_text())) for a, b in zip(args.base, args.new)]
    for set_name in ("synthetic", "real"):
        refs, a, b, speakers = pooled(pairs, set_name, args.system)
        if not refs:
            continue
        p = paired_wer(refs, a, b, args.resamples)
        print(f"\n{set_name}: {p.utterances} utterances   WER base {100 * p.wer_a:.1f} %   new {100 * p.wer_b:.1f} %   "
              f"new - base {100 * p.difference:+.1f} points (95 % interval {100 * p.low:+.1f} to {100 * p.high:+.1f})   "
              f"new better on {p.b_better}, worse on {p.b_worse}")
        for speaker in sorted(set(speakers)):
            mine = [i for i, s in enumerate(speakers) if s == speaker]
            q = paired_wer([refs[i] for i in mine], [a[i] for i in mine], [b[i] for i in mine], args.resamples)
            print(f"  {speaker:36} {100 * q.wer_a:6.1f} -> {100 * q.wer_b:6.1f} %  ({100 * q.low:+.1f} to "
                  f"{100 * q.high:+.1f})  better {q.b_better:2d}, worse {q.b_worse:2d} of {q.utterances}")


if __name__ == "__main__":
    main()
