"""`catcodec-tts "text" -o out.wav [--prompt ref.wav --prompt-text "..."] [--num-quantizers N] [--stream] ...`"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from catcodec.audio import AudioError, check_readable_path, save_audio

PROG = "catcodec-tts"
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Speak text with CAT-TTS (optionally in the voice of a prompt).")
    p.add_argument("text", help="what to say (English)")
    p.add_argument("-o", "--output", required=True, help="audio file to write (.wav, .flac or .ogg)")
    p.add_argument("--prompt", help="voice prompt: a recording of the voice to imitate (any rate, <= 15 s)")
    p.add_argument("--prompt-text", help="what the prompt says (improves the imitation)")
    p.add_argument("--model", default=None, help="TTS model folder (default: the bundled weights)")
    p.add_argument("--codec", default=None, help="codec preset or folder (default: the one the TTS model names)")
    p.add_argument("--num-quantizers", type=int, default=None, help="codebooks per frame: the bitrate (default: all)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--stream", action="store_true", help="generate frame by frame and report time to first audio")
    p.add_argument("--threads", type=int, default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from .phonemes import PhonemizerUnavailable
    from .pipeline import TTSPipeline

    try:
        if args.prompt is not None:  # a mistyped prompt fails now, not after the models have loaded
            check_readable_path(args.prompt)
        tts = TTSPipeline.from_pretrained(args.model, codec=args.codec)  # default: the bundled weights
        start = time.perf_counter()
        first = None
        chunks = []
        for chunk in tts.stream(args.text, prompt=args.prompt, prompt_text=args.prompt_text,
                                num_quantizers=args.num_quantizers, temperature=args.temperature, top_p=args.top_p,
                                top_k=args.top_k, seed=args.seed, max_seconds=args.max_seconds):
            if first is None:
                first = time.perf_counter() - start
            chunks.append(chunk)
        elapsed = time.perf_counter() - start
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if audio.size == 0:
            print(f"{PROG}: error: the model produced no audio for this text", file=sys.stderr)
            return EXIT_ERROR
        save_audio(args.output, audio, tts.sampling_rate)
    except (ValueError, AudioError, FileNotFoundError, OSError, PhonemizerUnavailable) as exc:
        print(f"{PROG}: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return EXIT_ERROR
    seconds = audio.size / tts.sampling_rate
    line = f"wrote {args.output}: {seconds:.2f} s, real-time factor {elapsed / seconds:.2f}"
    if args.stream:
        line += f", first audio after {1000 * first:.0f} ms"
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
