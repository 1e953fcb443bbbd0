"""`catcodec-asr transcribe FILES... [--model DIR] [--codec DIR] [--beam N] [--ctc-weight W] [--num-quantizers N] [--max-piece-seconds S]`"""

from __future__ import annotations

import argparse
import sys

import torch
from transformers.utils import logging as hf_logging

from catcodec.audio import AudioError, check_readable_path

PROG = "catcodec-asr"
EXIT_ERROR = 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Transcribe English speech with CAT-ASR (speech -> CAT tokens -> text).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = sub.add_parser("transcribe", help="print 'path<TAB>transcript' for each audio file",
                       description="Transcribe audio files (any rate, any channels, wav / flac / ogg) as one batch; "
                       "long files are cut at pauses and their pieces' transcripts joined.")
    t.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    t.add_argument("--model", default=None, help="ASR model folder (default: the bundled weights)")
    t.add_argument("--codec", default=None, help="codec preset or folder (default: the one the ASR model names)")
    t.add_argument("--beam", type=_positive_int, default=1, metavar="N", help="beam width (default: 1 = greedy)")
    t.add_argument("--ctc-weight", type=float, default=0.0, metavar="W",
                   help="joint CTC / attention decoding: weight W in [0, 1) of the model's CTC head (default 0: off)")
    t.add_argument("--num-quantizers", type=_positive_int, default=None, metavar="N",
                   help="codebooks per frame to read: the bitrate (default: all the model reads)")
    t.add_argument("--max-piece-seconds", type=_positive_float, default=20.0, metavar="S",
                   help="longest piece transcribed at once (default: 20)")
    t.add_argument("--batch-size", type=_positive_int, default=8, metavar="N", help="pieces encoded and decoded together")
    t.add_argument("--threads", type=_positive_int, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from .pipeline import ASRPipeline

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bars: stdout is the transcripts, stderr the errors
    try:
        for path in args.files:  # a mistyped name fails now, not after the models have loaded
            check_readable_path(path)
        asr = ASRPipeline.from_pretrained(args.model, codec=args.codec, max_piece_seconds=args.max_piece_seconds,
                                          batch_size=args.batch_size)
        texts = asr(list(args.files), num_quantizers=args.num_quantizers, beam=args.beam, ctc_weight=args.ctc_weight)
    except (ValueError, AudioError, FileNotFoundError, OSError) as exc:
        print(f"{PROG}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    for path, text in zip(args.files, texts):
        print(f"{path}\t{text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
