"""What a CAT model's residual quantizer keeps of the encoder's latent, level by level, on held-out speech.

    python benchmarks/bench_quantizer.py [--model cat-small-16k] [--manifest data/manifests/val_wideband.jsonl]
        [--max-items 12] [--json out.json]

Prints, for 1, 2, 4, ... K codebooks: the share of the latent's energy the first k layers leave (in the
quantizer's residual stream; 0 % = all of it quantized, the same measure as the training loss `residual`), and
the perplexity (exp of the entropy of its code histogram; at most the codebook size) and number of distinct codes
of codebook k. Also the latents' norms, the norm of what one layer adds and the cosine between the latent and the
first layer's vector: when the layers' vectors are far shorter than the latent or point away from it, the layers
cannot add up to the latent. Not a test: figures depend on the model and the items.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from catcodec import CATModel
from catcodec.audio import load_audio
from catcodec.presets import DEFAULT_MODEL
from training.data.manifest import read_manifest


@torch.no_grad()
def measure(model: CATModel, waveforms: list[np.ndarray]) -> dict:
    q = model.quantizer
    frame = model.config.hop_length
    left = np.zeros(q.num_quantizers + 1)
    counts = torch.zeros(q.num_quantizers, q.codebook_size)
    norms, added, cosines = [], [], []
    for wav in waveforms:
        wav = wav[: wav.size // frame * frame]
        if wav.size == 0:
            continue
        residual = q.input_proj(model.encoder(torch.from_numpy(wav)[None, None]))[0]  # [T, dim]
        norms.append(residual.norm(dim=-1))
        left[0] += float(residual.pow(2).sum())
        for i, layer in enumerate(q.layers):
            codes = layer.encode(residual)
            out = layer.decode(codes)
            if i == 0:
                cosines.append(torch.nn.functional.cosine_similarity(residual, out, dim=-1))
            residual = residual - out
            left[i + 1] += float(residual.pow(2).sum())
            counts[i] += torch.bincount(codes, minlength=q.codebook_size).float()
            added.append(out.norm(dim=-1))
    share = left / left[0]
    p = counts / counts.sum(1, keepdim=True).clamp_min(1)
    perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum(1))
    latent_norms = torch.cat(norms)
    return {
        "share_left": share.tolist(),  # [K + 1]: after 0..K layers
        "perplexity": perplexity.tolist(),
        "codes_used": (counts > 0).sum(1).tolist(),
        "latent_norm_p5_p50_p95": torch.quantile(latent_norms, torch.tensor([0.05, 0.5, 0.95])).tolist(),
        "layer_output_norm_median": float(torch.cat(added).median()),
        # how well the first layer's vector points along the latent (1 = same direction, 0 = orthogonal)
        "first_layer_cosine_median": float(torch.cat(cosines).median()),
        "frames": int(latent_norms.numel()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--manifest", type=Path, default=Path("data/manifests/val_wideband.jsonl"))
    ap.add_argument("--max-items", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = CATModel.from_pretrained(args.model).eval()
    entries = read_manifest(args.manifest)
    picks = np.linspace(0, len(entries) - 1, min(args.max_items, len(entries))).round().astype(int)
    waveforms = [load_audio(entries[i].audio, model.config.sampling_rate) for i in sorted(set(picks))]
    result = {"model": str(args.model), "items": len(waveforms), **measure(model, waveforms)}
    lo, mid, hi = result["latent_norm_p5_p50_p95"]
    print(f"{result['items']} items, {result['frames']} frames; latent norm {lo:.1f} / {mid:.1f} / {hi:.1f} (5 / 50 / 95 %), "
          f"one layer adds {result['layer_output_norm_median']:.1f} (median); cosine of the first layer's vector to the "
          f"latent {result['first_layer_cosine_median']:.2f} (median)")
    print(f"{'codebooks':>9} | {'energy left':>11} | {'perplexity of the last':>22} | {'codes used':>10}")
    k = 1
    while k <= len(result["perplexity"]):
        print(f"{k:>9} | {100 * result['share_left'][k]:>10.1f}% | {result['perplexity'][k - 1]:>22.0f} | {result['codes_used'][k - 1]:>10}")
        k *= 2
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
