"""Train the default codec recipe for a fixed number of steps and print what it bought on held-out speakers.

    python benchmarks/bench_codec_training.py [--config configs/codec_small_cpu.yaml] [--steps 300] [--threads 1]

Prints the multi-scale mel distance (lower is better) of the untrained and the trained model on the held-out
validation manifest of the recipe, at several numbers of codebooks, and training steps per second. Needs the
manifests of the recipe (see the README's Training section). Not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from catcodec.training_task import CodecTask
from training.config import load_config
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


@torch.no_grad()
def held_out_mel(trainer: Trainer, batches: int) -> dict[str, float]:
    """The task's own validation (mel distance per num_quantizers) on the first `batches` held-out batches."""
    trainer.config.val_batches = batches
    return trainer.validate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs" / "codec_small_cpu.yaml"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--val-batches", type=int, default=3)
    ap.add_argument("--override", "-o", nargs="*", default=[])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as out:
        overrides = [
            f"max_steps={args.steps}",
            f"threads={args.threads}",
            f"output_dir={out}",
            "checkpoint_every=0",
            "val_every=0",
            "progress=true",
            *args.override,
        ]
        config = load_config(args.config, overrides)
        trainer = Trainer(config, CodecTask(config))
        before = held_out_mel(trainer, args.val_batches)
        start = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - start
        after = held_out_mel(trainer, args.val_batches)

    result = {
        "config": args.config,
        "steps": args.steps,
        "threads": args.threads,
        "train_seconds": seconds,
        "steps_per_second": args.steps / seconds,
        "held_out_mel_before": before,
        "held_out_mel_after": after,
        "ratio_after_over_before": {k: after[k] / before[k] for k in before},
    }
    print(f"\n{args.steps} steps in {seconds:.0f} s = {result['steps_per_second']:.2f} steps/s ({args.threads} threads)")
    print(f"{'held-out mel distance':24}{'untrained':>12}{'trained':>12}{'ratio':>8}")
    for k in before:
        print(f"{k:24}{before[k]:12.3f}{after[k]:12.3f}{after[k] / before[k]:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
