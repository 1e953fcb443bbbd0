"""How much of what is said a codec's codes carry: a fresh probe learns to spell transcripts from them.

    python benchmarks/bench_code_content.py --model catcodec/pretrained/cat-small-16k --model runs/codec_semantic/model
        [--train data/synth_tts/train.jsonl --val data/synth_tts/val.jsonl] [--num-quantizers 8] [--mel-control]

For each model and number of codebooks, the utterances are encoded once and decoded to the quantizer's output
(what the decoder reads); a small CTC probe (convolutions + a bidirectional GRU, 4 character slots per frame)
then learns, on those frozen frames, to spell each utterance's transcript. It has no language model to lean on,
so what it gets right was in the frames. Printed: its lowest held-out character error rate (greedy, evaluated
every --eval-every steps), beside the same probe on log-mel frames of the same audio at the same frame rate
(--mel-control: what this probe can read from nearly all of the audio). Same items, seed and steps for every
row; the held-out manifest's voices and sentences are not in the training one. Not a test.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from asr.metrics import character_error_rate
from catcodec import CATModel
from catcodec.audio import load_audio
from training.data.manifest import read_manifest
from tts.text import normalize_text

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"  # CTC blank is 0, these are 1..28


def spell(text: str) -> str:
    """Lower-case letters, spaces and apostrophes (numbers spelt out, punctuation dropped)."""
    return " ".join(re.sub(f"[^{ALPHABET}]", " ", normalize_text(text)).split())


def spread(items: list, count: int) -> list:
    """`count` items spread evenly over the list (manifests are ordered by voice)."""
    if count >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def load_items(manifest: str, count: int, max_seconds: float, rate: int) -> list[tuple[np.ndarray, str]]:
    entries = [e for e in read_manifest(manifest) if e.text and e.duration <= max_seconds]
    spelt = [(e.audio, text) for e, text in zip(entries, map(spell, (e.text for e in entries))) if text]
    return [(load_audio(audio, rate), text) for audio, text in spread(spelt, count)]


@torch.no_grad()
def quantized_frames(model: CATModel, items: list[tuple[np.ndarray, str]], num_quantizers: int) -> list[torch.Tensor]:
    """Each utterance -> the quantizer's output [frames, dim] from its first `num_quantizers` codebooks."""
    frames = []
    for audio, _ in tqdm(items, desc=f"encode q{num_quantizers}", leave=False):
        codes = model.encode(torch.from_numpy(audio)[None, None], num_quantizers=num_quantizers).audio_codes
        frames.append(model.quantizer.decode(codes)[0])
    return frames


def mel_frames(items: list[tuple[np.ndarray, str]], rate: int, hop: int, sub: int = 8) -> list[torch.Tensor]:
    """The control: each utterance's log-mel spectrogram (80 bands), `sub` frames stacked per codec frame, so
    the probe reads the same frame rate with (nearly) all the audio's content."""
    frames = []
    for audio, _ in items:
        n = -(-audio.size // hop)
        mel = librosa.feature.melspectrogram(y=np.pad(audio, (0, n * hop - audio.size)), sr=rate, n_fft=1024,
                                             hop_length=hop // sub, n_mels=80, center=False)
        logmel = np.log(np.maximum(mel, 1e-5))
        logmel = np.pad(logmel, ((0, 0), (0, n * sub - logmel.shape[1])), mode="edge")[:, : n * sub]
        frames.append(torch.from_numpy((logmel.T.reshape(n, sub * 80) + 5.0) / 5.0).float())
    return frames


class CTCProbe(nn.Module):
    """Frames [B, F, D] -> character log-probabilities [B, F * slots, 1 + len(ALPHABET)]."""

    def __init__(self, dim: int, hidden: int = 192, slots: int = 4) -> None:
        super().__init__()
        self.slots = slots
        self.norm = nn.LayerNorm(dim)
        self.inp = nn.Linear(dim, hidden)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, 5, padding=2) for _ in range(2))
        self.rnn = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(hidden, slots * (1 + len(ALPHABET)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(self.norm(x))
        for conv in self.convs:
            h = h + F.gelu(conv(h.transpose(1, 2))).transpose(1, 2)
        h, _ = self.rnn(h)
        b, f, _ = h.shape
        return self.out(h).reshape(b, f * self.slots, -1).log_softmax(-1)


def batches(features: list[torch.Tensor], texts: list[str], size: int, rng: np.random.Generator | None):
    order = rng.permutation(len(features)) if rng is not None else np.arange(len(features))
    for start in range(0, len(order), size):
        picks = order[start : start + size]
        longest = max(features[i].shape[0] for i in picks)
        x = torch.zeros(len(picks), longest, features[0].shape[-1])
        for row, i in enumerate(picks):
            x[row, : features[i].shape[0]] = features[i]
        yield x, torch.tensor([features[i].shape[0] for i in picks]), [texts[i] for i in picks]


def ctc_loss(probe: CTCProbe, x: torch.Tensor, lengths: torch.Tensor, texts: list[str]) -> torch.Tensor:
    log_probs = probe(x)
    targets = torch.tensor([ALPHABET.index(c) + 1 for t in texts for c in t])
    target_lengths = torch.tensor([len(t) for t in texts])
    return F.ctc_loss(log_probs.transpose(0, 1), targets, lengths * probe.slots, target_lengths, zero_infinity=True)


@torch.no_grad()
def held_out_cer(probe: CTCProbe, val: list[torch.Tensor], val_texts: list[str], batch_size: int) -> float:
    """Greedy CTC decoding (best path, repeats merged, blanks dropped) -> corpus character error rate."""
    probe.eval()
    hypotheses = []
    for x, lengths, _ in batches(val, val_texts, batch_size, None):
        best = probe(x).argmax(-1)
        for row, n in zip(best, lengths * probe.slots):
            ids = torch.unique_consecutive(row[:n]).tolist()
            hypotheses.append(" ".join("".join(ALPHABET[i - 1] for i in ids if i).split()))
    probe.train()
    return character_error_rate(val_texts, hypotheses)


def probe_cer(train: list[torch.Tensor], train_texts: list[str], val: list[torch.Tensor], val_texts: list[str],
              steps: int, batch_size: int, seed: int, eval_every: int) -> float:
    """Train a fresh CTC probe on the frozen frames for `steps` steps; its lowest held-out CER over
    evaluations every `eval_every` steps."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    probe = CTCProbe(train[0].shape[-1])
    optimizer = torch.optim.AdamW(probe.parameters(), lr=2e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.1)
    done, best = 0, float("inf")
    with tqdm(total=steps, desc="probe", leave=False) as bar:
        while done < steps:
            for x, lengths, texts in batches(train, train_texts, batch_size, rng):
                loss = ctc_loss(probe, x, lengths, texts)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(probe.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                done += 1
                bar.update(1)
                if done % eval_every == 0 or done == steps:
                    best = min(best, held_out_cer(probe, val, val_texts, batch_size))
                bar.set_postfix(loss=f"{loss.item():.3f}", best_cer=f"{best:.3f}")
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
    parser.add_argument("--num-quantizers", type=int, nargs="*", default=[8], help="none: the control only")
    parser.add_argument("--mel-control", action="store_true", help="also probe log-mel frames of the same audio")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    models = {m: CATModel.from_pretrained(m).eval() for m in args.model}
    config = next(iter(models.values())).config
    train_items = load_items(args.train, args.train_items, args.max_seconds, config.sampling_rate)
    val_items = load_items(args.val, args.val_items, args.max_seconds, config.sampling_rate)
    train_texts, val_texts = [t for _, t in train_items], [t for _, t in val_items]
    print(f"{len(train_items)} training and {len(val_items)} held-out utterances; CTC probe: {args.steps} steps of "
          f"{args.batch_size}, seed {args.seed}")

    def run(name: str, n: int, train: list[torch.Tensor], val: list[torch.Tensor], start: float) -> dict:
        cer = probe_cer(train, train_texts, val, val_texts, args.steps, args.batch_size, args.seed, args.eval_every)
        print(f"  {name}{f' q{n}' if n else ''}: held-out CER {cer:.1%} ({time.perf_counter() - start:.0f} s)")
        return {"model": name, "num_quantizers": n, "cer": cer}

    rows = []
    if args.mel_control:
        start = time.perf_counter()
        hop = config.hop_length
        rows.append(run("(log-mel frames: the control)", 0, mel_frames(train_items, config.sampling_rate, hop),
                        mel_frames(val_items, config.sampling_rate, hop), start))
    for name, model in models.items():
        for n in args.num_quantizers:
            start = time.perf_counter()
            rows.append(run(name, n, quantized_frames(model, train_items, n), quantized_frames(model, val_items, n), start))

    print("\n| frames | codebooks | held-out CER of the probe |\n|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['num_quantizers'] or '-'} | {r['cer']:.1%} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
