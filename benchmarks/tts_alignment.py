"""Has a CAT-TTS model learnt which character each frame speaks? Two figures and a plot, on held-out items.

    python benchmarks/tts_alignment.py --model runs/tts_small_cpu/model [--manifest data/synth_tts/val.codes.jsonl]
        [--items 16] [--plot alignment.png] [--threads 1]

- text gain: the first codebook's held-out loss with each item's own transcript and with another item's
  transcript (same codes). A model that reads the text scores clearly better with its own; equal losses mean
  it speaks from the audio context alone (babble).
- word-order gain: the same with each item's own words in reverse order: the same characters and length, so
  a model that only paces its speech to the length of the text gains nothing here; one that reads does.
- per layer: the guided heads' penalty (`tts.alignment.guided_attention_loss`: the share of their attention
  not on the text's diagonal, audio included), and the off-diagonal share of all heads' attention over the
  text, renormalised there (`tts.alignment.off_diagonal_share`; about 0.5 for attention spread evenly, near 0
  for a clean monotonic alignment), and how much of the attention goes to the text at all.
- the plot: frames (x) against characters (y) for the first item, one panel per layer (each head's attention
  renormalised over the text, then the mean over heads).
Not a test: a diagnostic for training runs (guided attention or not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tts.alignment import (frame_text_attention, guided_attention_loss, off_diagonal_share, renormalised_over_text, text_gain,
                           word_order_gain)
from tts.modeling_tts import CATTTSModel
from tts.text import tokenizer_for
from tts.training_task import CodesTextDataset, collate_tts


def plot(maps: torch.Tensor, text: str, path: Path) -> None:
    """maps [layers, heads, frames + 1, characters] of one item -> one panel per layer (mean over heads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = maps.shape[0]
    fig, axes = plt.subplots(1, layers, figsize=(3.2 * layers, 3.4), squeeze=False)
    for layer, ax in enumerate(axes[0]):
        ax.imshow(maps[layer].mean(0).t().numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(f"layer {layer}", fontsize=9)
        ax.set_xlabel("frame")
        if layer == 0:
            ax.set_ylabel("character")
    fig.suptitle(f"frames' attention to the text: {text[:70]!r}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a CAT-TTS folder (a run's model/ is written at every checkpoint)")
    ap.add_argument("--manifest", type=Path, default=Path("data/synth_tts/val.codes.jsonl"))
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = CATTTSModel.from_pretrained(args.model).eval()
    k = model.config.num_quantizers
    data = CodesTextDataset([args.manifest], k, model.config.max_positions // 2, tokenizer_for(model.config.text_frontend))
    picks = torch.linspace(0, len(data) - 1, min(args.items, len(data))).round().long().tolist()
    batch = collate_tts([data[i] for i in picks])
    levels = torch.full((len(picks),), k)
    with torch.no_grad():
        own = model(**batch, levels=levels, output_attentions=True)
        gain = text_gain(model, batch, float(own.loss_per_level[0]), levels)  # each item gets its neighbour's transcript
        order_gain = word_order_gain(model, batch, float(own.loss_per_level[0]), levels, data.tokenizer.id_of(" "))
    starts, lengths = batch["text_lengths"].tolist(), batch["frame_lengths"].tolist()
    sigma = model.config.guided_attention_sigma
    per_layer = [float(off_diagonal_share([a], starts, lengths, sigma)) for a in own.attentions]
    guided = [float(guided_attention_loss([a], starts, lengths, sigma, model.config.guided_attention_heads))
              for a in own.attentions]
    maps = frame_text_attention(own.attentions, starts, lengths)
    text_share = [sum(float(m[layer].sum(-1).mean()) for m in maps) / len(maps) for layer in range(len(own.attentions))]
    q1_own = float(own.loss_per_level[0])
    print(f"{args.model}: {len(picks)} held-out items of {args.manifest}")
    print(f"first-codebook loss with its own transcript {q1_own:.3f}, with another's {q1_own + gain:.3f}: "
          f"text gain {gain:+.3f} nats")
    print(f"with its own words in reverse order {q1_own + order_gain:.3f}: word-order gain {order_gain:+.3f} nats")
    print(f"guided heads' penalty per layer (first {model.config.guided_attention_heads or 'all'}): "
          + " / ".join(f"{p:.3f}" for p in guided))
    print("off-diagonal share of the text attention per layer (all heads): " + " / ".join(f"{p:.3f}" for p in per_layer))
    print("share of the attention that goes to the text per layer: " + " / ".join(f"{p:.3f}" for p in text_share))
    if args.plot is not None:
        text = data.tokenizer.decode(data.items[picks[0]][0])
        plot(renormalised_over_text(maps[0]), text, args.plot)


if __name__ == "__main__":
    main()
