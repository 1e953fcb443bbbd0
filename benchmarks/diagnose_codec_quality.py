"""Where a codec loses PESQ and STOI: score hybrids of its output with the reference (catcodec.evaluation.spectral_swap).

    python benchmarks/diagnose_codec_quality.py [--model catcodec/pretrained/cat-small-16k]
        [--manifest data/manifests/val_wideband.jsonl] [--max-items 6] [--num-quantizers 16] [--oracle-pitch]
        [--threads 2] [--json out.json]

Each item is encoded and decoded at --num-quantizers codebooks and time-aligned to its reference; then each
hybrid (the decoded audio with one part of its spectrum taken from the reference: magnitude, phase, low band,
high band, envelope, fine structure) is scored. A part whose swap lifts a metric a lot is where the codec loses
it. With --oracle-pitch (models with a harmonic branch), the decoder is also run with its pitch and voicing
replaced by the reference's YIN track: a large gain there would mean the pitch, not the spectrum, is the limit.
Medians over items are printed. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from catcodec import CATModel  # noqa: E402
from catcodec.audio import load_audio  # noqa: E402
from catcodec.evaluation.metrics import pesq_wb, stoi, time_align  # noqa: E402
from catcodec.evaluation.run import as_item, select_items  # noqa: E402
from catcodec.evaluation.spectral_swap import HYBRIDS, SwapConfig, hybrids  # noqa: E402
from catcodec.pitch import estimate_pitch  # noqa: E402
from training.data.manifest import read_manifest  # noqa: E402

ORACLE_PITCH = "oracle_pitch"


def oracle_pitch_logits(head, f0: torch.Tensor, voiced: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A YIN track [B, N] -> pitch logits whose softmax expectation is exactly its log-frequency (two adjacent
    bins share the weight) and voicing logits of +-10."""
    pos = head.pitch_bin_position(f0.clamp(min=head.fmin))
    low = pos.floor().clamp(max=head.pitch_bins - 2)
    frac = pos - low
    weights = torch.zeros(*f0.shape, head.pitch_bins, dtype=torch.float32)
    weights.scatter_(-1, low.long()[..., None], (1 - frac)[..., None].float())
    weights.scatter_add_(-1, low.long()[..., None] + 1, frac[..., None].float())
    return torch.log(weights.clamp(min=1e-9)), voiced.float() * 20 - 10


@contextmanager
def pitch_from_track(model: CATModel, wav: torch.Tensor):
    """Within the block, the decoder's harmonic branch sings the YIN pitch of `wav` [1, 1, T] on voiced frames."""
    decoder = model.decoder
    head, predictor = decoder.harmonic, decoder.pitch_predictor
    track = estimate_pitch(wav, model.config.sampling_rate, head.hop, fmin=head.fmin, fmax=head.fmax)
    logits, voicing = oracle_pitch_logits(head, track.f0, track.voiced)
    original = predictor.forward

    def forward(latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pitch_logits, voicing_logits = original(latents)
        n = min(pitch_logits.shape[1], logits.shape[1])
        keep = ~track.voiced[:, :n, None]
        pitch_logits = pitch_logits.clone()
        pitch_logits[:, :n] = torch.where(keep, pitch_logits[:, :n], logits[:, :n])
        voicing_logits = voicing_logits.clone()
        voicing_logits[:, :n] = voicing[:, :n]
        return pitch_logits, voicing_logits

    predictor.forward = forward
    try:
        yield
    finally:
        predictor.forward = original


def decode(model: CATModel, codes: torch.Tensor, length: int) -> np.ndarray:
    return model.decode(codes).audio_values.reshape(-1)[:length].double().cpu().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="catcodec/pretrained/cat-small-16k")
    parser.add_argument("--manifest", default="data/manifests/val_wideband.jsonl")
    parser.add_argument("--max-items", type=int, default=6)
    parser.add_argument("--num-quantizers", type=int, default=16)
    parser.add_argument("--oracle-pitch", action="store_true", help="also decode with the reference's YIN pitch")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = CATModel.from_pretrained(args.model).eval()
    rate = model.config.sampling_rate
    if rate != 16000:
        sys.exit(f"this diagnosis scores at 16 kHz; {args.model} runs at {rate} Hz")
    if args.oracle_pitch and model.decoder.harmonic is None:
        sys.exit(f"--oracle-pitch needs a model with a harmonic branch; {args.model} has none")
    items = [as_item(e) for e in select_items(read_manifest(args.manifest), args.max_items)]
    names = list(HYBRIDS) + ([ORACLE_PITCH] if args.oracle_pitch else [])
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    per_item = []
    with torch.inference_mode():
        for entry in tqdm(items, desc="diagnosing", unit="item", file=sys.stderr):
            wav = load_audio(entry.audio, rate).astype(np.float32)
            ref = wav.astype(np.float64)
            x = torch.from_numpy(wav)[None, None]
            codes = model.encode(x, num_quantizers=args.num_quantizers).audio_codes
            decoded, _ = time_align(ref, decode(model, codes, ref.shape[0]))
            signals = hybrids(ref, decoded[: ref.shape[0]], rate, SwapConfig())
            if args.oracle_pitch:
                with pitch_from_track(model, x):
                    signals[ORACLE_PITCH] = time_align(ref, decode(model, codes, ref.shape[0]))[0][: ref.shape[0]]
            row = {"id": entry.id}
            for name, signal in signals.items():
                value = (pesq_wb(ref, signal), stoi(ref, signal))
                scores[name].append(value)
                row[name] = {"pesq_wb": value[0], "stoi": value[1]}
            per_item.append(row)

    medians = {name: {"pesq_wb": float(np.median([v[0] for v in vals])), "stoi": float(np.median([v[1] for v in vals]))}
               for name, vals in scores.items()}
    base = medians["decoded"]
    print(f"{args.model}, {args.num_quantizers} codebooks, {len(per_item)} items of {args.manifest} (medians)")
    print(f"{'hybrid':26s} {'PESQ-WB':>8s} {'gain':>6s} {'STOI':>7s} {'gain':>7s}  takes from the reference")
    for name in names:
        m = medians[name]
        what = HYBRIDS.get(name, "pitch and voicing of the harmonic branch (YIN track of the reference)")
        print(f"{name:26s} {m['pesq_wb']:8.3f} {m['pesq_wb'] - base['pesq_wb']:+6.2f} {m['stoi']:7.3f} "
              f"{m['stoi'] - base['stoi']:+7.3f}  {what}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(model=args.model, manifest=args.manifest, num_quantizers=args.num_quantizers,
                                                   medians=medians, items=per_item), indent=1))


if __name__ == "__main__":
    main()
