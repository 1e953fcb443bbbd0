"""Encode/decode real-time factors of a CAT model, offline and streaming, on a fixed number of threads.

    python benchmarks/bench_codec_speed.py [--model cat-small-16k] [--threads 2] [--seconds 10] [--repeats 5]

RTF = compute seconds per second of audio (lower is faster; < 1 is faster than real time). Streaming feeds
chunks of `--chunk-frames` frames (default 1 = 80 ms) through StreamingEncoder / StreamingDecoder. Prints
medians over repeats and the streaming / offline ratio. Not a test: figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from catcodec import CATModel
from catcodec.audio import load_audio
from catcodec.presets import DEFAULT_MODEL
from catcodec.streaming import StreamingDecoder, StreamingEncoder

EXAMPLE = Path(__file__).resolve().parents[1] / "catcodec" / "assets" / "vctk_p225_003.flac"


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def make_signal(model: CATModel, seconds: float) -> torch.Tensor:
    """The bundled speech example, repeated to `seconds`, as [1, 1, T]."""
    sr = model.config.sampling_rate
    wav = torch.from_numpy(load_audio(EXAMPLE, sr))
    reps = int(seconds * sr // wav.numel()) + 1
    return wav.repeat(reps)[: int(seconds * sr)][None, None]


def stream_encode(model: CATModel, wav: torch.Tensor, n_q: int, chunk: int) -> torch.Tensor:
    with StreamingEncoder(model, n_q) as enc:
        codes = [enc.push(wav[..., i : i + chunk]) for i in range(0, wav.shape[-1], chunk)]
        codes.append(enc.flush())
    return torch.cat(codes, dim=-1)


def stream_decode(model: CATModel, codes: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    with StreamingDecoder(model) as dec:
        return torch.cat([dec.push(codes[..., i : i + chunk_frames]) for i in range(0, codes.shape[-1], chunk_frames)], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--num-quantizers", type=int, default=8)
    ap.add_argument("--chunk-frames", type=int, default=1)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    model = CATModel.from_pretrained(args.model).eval()
    wav = make_signal(model, args.seconds)
    hop = model.config.hop_length
    chunk = args.chunk_frames * hop
    n_q = args.num_quantizers

    runs: dict[str, list[float]] = {k: [] for k in ("offline_encode", "offline_decode", "stream_encode", "stream_decode")}
    with torch.inference_mode():
        codes = model.encode(wav, num_quantizers=n_q).audio_codes  # warm-up
        model.decode(codes)
        stream_decode(model, stream_encode(model, wav[..., : 4 * hop], n_q, chunk), args.chunk_frames)
        for _ in range(args.repeats):
            t, codes = timed(lambda: model.encode(wav, num_quantizers=n_q).audio_codes)
            runs["offline_encode"].append(t)
            t, audio = timed(lambda: model.decode(codes).audio_values)
            runs["offline_decode"].append(t)
            t, s_codes = timed(lambda: stream_encode(model, wav, n_q, chunk))
            runs["stream_encode"].append(t)
            t, s_audio = timed(lambda: stream_decode(model, s_codes, args.chunk_frames))
            runs["stream_decode"].append(t)
        same_codes = torch.equal(s_codes, codes)
        max_diff = float((s_audio - audio).abs().max())

    seconds = wav.shape[-1] / model.config.sampling_rate
    rtf = {k: statistics.median(v) / seconds for k, v in runs.items()}
    result = {
        "model": args.model,
        "weights": model.weights_source,
        "threads": args.threads,
        "audio_seconds": seconds,
        "num_quantizers": n_q,
        "chunk_ms": 1000 * chunk / model.config.sampling_rate,
        "repeats": args.repeats,
        "rtf": rtf,
        "stream_over_offline": {
            "encode": rtf["stream_encode"] / rtf["offline_encode"],
            "decode": rtf["stream_decode"] / rtf["offline_decode"],
        },
        "streaming_codes_equal_offline": same_codes,
        "streaming_audio_max_abs_diff": max_diff,
    }
    print(f"model {args.model} ({model.weights_source}), {args.threads} threads, {seconds:.1f} s of audio, "
          f"{n_q} quantizers, streaming chunks of {result['chunk_ms']:.0f} ms, median of {args.repeats}")
    print(f"{'':16}{'encode RTF':>12}{'decode RTF':>12}")
    print(f"{'offline':16}{rtf['offline_encode']:12.4f}{rtf['offline_decode']:12.4f}")
    print(f"{'streaming':16}{rtf['stream_encode']:12.4f}{rtf['stream_decode']:12.4f}")
    r = result["stream_over_offline"]
    print(f"{'stream/offline':16}{r['encode']:12.2f}{r['decode']:12.2f}")
    print(f"streaming == offline: codes {same_codes}, audio max |diff| {max_diff:.2e}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
