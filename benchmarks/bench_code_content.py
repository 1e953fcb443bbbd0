"""How much of what is said a codec's codes carry: a fresh probe learns to read transcripts from them.

    python benchmarks/bench_code_content.py --model catcodec/pretrained/cat-small-16k --model runs/codec_semantic/model
        [--train data/synth_tts/train.jsonl --val data/synth_tts/val.jsonl] [--num-quantizers 8] [--steps 800]

For each model and number of codebooks, the utterances are encoded once and decoded to the quantizer's output
(what the decoder reads); a small causal LM (catcodec.semantic.SemanticHead, as in training) then learns, on
those frozen frames, to write each utterance's transcript byte by byte. Printed: its lowest held-out loss (nats
per byte, evaluated every --eval-every steps: it soon learns the training sentences by heart), and the same
probe trained on silence (all-zero frames: the text prior and the duration alone) for scale. The gap is the
content the codes carry -- what the TTS and ASR models built on them can use. Same items, seed and steps for
every row; the held-out manifest's voices and sentences are not in the training one. Not a test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from catcodec import CATModel
from catcodec.audio import load_audio
from catcodec.semantic import SemanticHead, SemanticHeadConfig
from training.data.manifest import read_manifest

PROBE = SemanticHeadConfig(hidden_size=192, num_layers=2, num_heads=4, intermediate_size=768)


def spread(items: list, count: int) -> list:
    """`count` items spread evenly over the list (manifests are ordered by voice)."""
    if count >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def load_items(manifest: str, count: int, max_seconds: float, rate: int) -> list[tuple[np.ndarray, str]]:
    entries = [e for e in read_manifest(manifest) if e.text and e.duration <= max_seconds]
    return [(load_audio(e.audio, rate), e.text) for e in spread(entries, count)]


@torch.no_grad()
def quantized_frames(model: CATModel, items: list[tuple[np.ndarray, str]], num_quantizers: int) -> list[torch.Tensor]:
    """Each utterance -> the quantizer's output [frames, dim] from its first `num_quantizers` codebooks."""
    frames = []
    for audio, _ in tqdm(items, desc=f"encode q{num_quantizers}", leave=False):
        codes = model.encode(torch.from_numpy(audio)[None, None], num_quantizers=num_quantizers).audio_codes
        frames.append(model.quantizer.decode(codes)[0])
    return frames


def batches(features: list[torch.Tensor], texts: list[str], size: int, rng: np.random.Generator | None):
    order = rng.permutation(len(features)) if rng is not None else np.arange(len(features))
    for start in range(0, len(order), size):
        picks = order[start : start + size]
        longest = max(features[i].shape[0] for i in picks)
        x = torch.zeros(len(picks), longest, features[0].shape[-1])
        for row, i in enumerate(picks):
            x[row, : features[i].shape[0]] = features[i]
        yield x, torch.tensor([features[i].shape[0] for i in picks]), [texts[i] for i in picks]


@torch.no_grad()
def held_out_loss(head: SemanticHead, val: list[torch.Tensor], val_texts: list[str], batch_size: int) -> float:
    head.eval()
    total = sum(float(head(x, n, t)) * len(t) for x, n, t in batches(val, val_texts, batch_size, None))
    head.train()
    return total / len(val)


def probe(train: list[torch.Tensor], train_texts: list[str], val: list[torch.Tensor], val_texts: list[str],
          steps: int, batch_size: int, seed: int, eval_every: int) -> float:
    """Train a fresh probe on the frozen frames for `steps` steps; its lowest mean held-out loss (nats per
    byte) over evaluations every `eval_every` steps (it learns the training sentences by heart, then gets worse)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = SemanticHead(train[0].shape[-1], PROBE)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps, pct_start=0.05)
    done, best = 0, float("inf")
    with tqdm(total=steps, desc="probe", leave=False) as bar:
        while done < steps:
            for x, lengths, texts in batches(train, train_texts, batch_size, rng):
                loss = head(x, lengths, texts)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                done += 1
                bar.update(1)
                if done % eval_every == 0 or done == steps:
                    best = min(best, held_out_loss(head, val, val_texts, batch_size))
                bar.set_postfix(loss=f"{loss.item():.3f}", best_held_out=f"{best:.3f}")
                if done == steps:
                    break
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a saved model folder (repeat to compare)")
    parser.add_argument("--train", default="data/synth_tts/train.jsonl")
    parser.add_argument("--val", default="data/synth_tts/val.jsonl")
    parser.add_argument("--train-items", type=int, default=1200)
    parser.add_argument("--val-items", type=int, default=120)
    parser.add_argument("--max-seconds", type=float, default=6.0)
    parser.add_argument("--num-quantizers", type=int, nargs="+", default=[8])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = {m: CATModel.from_pretrained(m).eval() for m in args.model}
    rate = next(iter(models.values())).config.sampling_rate
    train_items = load_items(args.train, args.train_items, args.max_seconds, rate)
    val_items = load_items(args.val, args.val_items, args.max_seconds, rate)
    train_texts, val_texts = [t for _, t in train_items], [t for _, t in val_items]
    print(f"{len(train_items)} training and {len(val_items)} held-out utterances; probe: {args.steps} steps of "
          f"{args.batch_size}, seed {args.seed}")

    rows = []
    first = next(iter(models.values())).config
    def silence(items):  # as many all-zero frames as the codes would have: the probe still knows the duration
        return [torch.zeros(-(-a.size // first.hop_length), first.stage_output_dims[-1]) for a, _ in items]

    start = time.perf_counter()
    prior = probe(silence(train_items), train_texts, silence(val_items), val_texts, args.steps, args.batch_size, args.seed, args.eval_every)
    rows.append({"model": "(silence: text prior and duration)", "num_quantizers": 0, "loss": prior, "gain": 0.0})
    print(f"  text prior: {prior:.3f} nats/byte ({time.perf_counter() - start:.0f} s)")
    for name, model in models.items():
        for n in args.num_quantizers:
            start = time.perf_counter()
            train = quantized_frames(model, train_items, n)
            val = quantized_frames(model, val_items, n)
            loss = probe(train, train_texts, val, val_texts, args.steps, args.batch_size, args.seed, args.eval_every)
            rows.append({"model": name, "num_quantizers": n, "loss": loss, "gain": prior - loss})
            print(f"  {name} q{n}: {loss:.3f} nats/byte, {prior - loss:+.3f} vs the text prior "
                  f"({time.perf_counter() - start:.0f} s)")

    print("\n| model | codebooks | held-out loss (nats/byte) | gain over the text prior |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['num_quantizers'] or '-'} | {r['loss']:.3f} | {r['gain']:+.3f} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
