"""Does distillation help a small codec? A half-width student trained alone vs distilled from the default codec.

    python benchmarks/bench_distill_codec.py [--steps 600] [--threads 1] [--teacher catcodec/pretrained/cat-small-16k]
        [--latent-weight 1] [--audio-weight 15] [--hidden-weight 0 --hidden-layers "[[1, 1], [2, 2]]"]
        [--anneal-steps N] [--inherit-quantizer] [--students alone,distilled] [--unit-codes]

Both students start from the same initialisation and see the same batches in the same order for the same
number of steps (reconstruction phase only: no discriminator, so the comparison is cheap and not noisy).
The distilled one also matches the teacher's quantizer-input latents (through a learned projection) and
its output audio (multi-scale mel distance); `--hidden-weight` adds its decoder stages' outputs;
`--inherit-quantizer` starts it with the teacher's quantizer (same shapes) and an identity latent projection. Prints
held-out mel distance per number of codebooks and STOI at 2 kbps for both, the teacher for scale, and the ratio.
Needs the manifests of configs/codec_small_cpu.yaml. Not a test: figures depend on the machine and the step budget.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from catcodec import CATModel
from catcodec.evaluation.metrics import stoi
from catcodec.training_task import CodecTask
from training.config import load_config
from training.data import AudioDataset
from training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]

# Half the default codec's widths, half its depth: about a fifth of its parameters.
STUDENT = {
    "stage_dims": [128, 128, 128, 192],
    "stage_layers": [1, 1, 1, 2],
    "stage_heads": [2, 2, 2, 3],
    "stage_output_dims": [128, 128, 192, 256],
    "output_head": "istft",
    # DAC's quantizer layers, the preset's since v4 (`--unit-codes`: v0-v3's, as session 19 measured; before
    # session 20's calibration of fresh layers, DAC's diverged here in 64 steps). The codes' kind does not matter
    # to what is distilled (the teacher's quantizer-input latents and its output audio).
    "unit_codes": False,
}


@torch.no_grad()
def held_out_stoi(codec: CATModel, manifest: str, items: int, num_quantizers: int) -> float:
    """Mean STOI of the first `items` held-out clips (first 4 s) decoded at `num_quantizers` codebooks."""
    data = AudioDataset([(manifest, 1.0)], codec.config.sampling_rate, crop_seconds=4.0, seed=0)
    scores = []
    for i in range(min(items, len(data))):
        audio = data[i]["audio"].reshape(1, 1, -1)
        codes = codec.encode(audio, num_quantizers=num_quantizers).audio_codes
        decoded = codec.decode(codes).audio_values[..., : audio.shape[-1]]
        scores.append(stoi(audio[0, 0].numpy(), decoded[0, 0].numpy(), codec.config.sampling_rate))
    return float(np.mean(scores))


def train_student(args, out: str, distill: dict | None) -> tuple[dict[str, float], float, float, CATModel]:
    overrides = [
        f"max_steps={args.steps}",
        f"threads={args.threads}",
        f"output_dir={out}",
        "time_limit_minutes=null",
        "checkpoint_every=0",
        "val_every=0",
        "progress=true",
        f"seed={args.seed}",
        "schedule.warmup_steps=100",
        "task.init_from=null",
        f"task.model_overrides={json.dumps({**STUDENT, 'unit_codes': args.unit_codes})}",
        "task.adversarial_start=1000000000",
        "task.quantizer_warmup_steps=0",
    ]
    if distill is not None:
        overrides.append(f"distill={json.dumps(distill)}")
    config = load_config(args.config, overrides)
    trainer = Trainer(config, CodecTask(config))
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    trainer.config.val_batches = args.val_batches
    mel = trainer.validate()
    codec = trainer.models.raw("generator").codec.eval()
    return mel, held_out_stoi(codec, args.val_manifest, args.stoi_items, 16), seconds, codec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs" / "codec_small_cpu.yaml"))
    ap.add_argument("--teacher", default=str(REPO / "catcodec" / "pretrained" / "cat-small-16k"))
    ap.add_argument("--val-manifest", default="data/manifests/val_wideband.jsonl")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-batches", type=int, default=4)
    ap.add_argument("--stoi-items", type=int, default=8)
    ap.add_argument("--latent-weight", type=float, default=1.0)
    ap.add_argument("--audio-weight", type=float, default=15.0, help="same scale as the task's mel weight")
    ap.add_argument("--unit-codes", action="store_true", help="the student's quantizer layers output unit vectors (v0-v3's kind)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--hidden-weight", type=float, default=0.0, help="decoder stage outputs through projections")
    ap.add_argument("--hidden-layers", default="[[1, 1], [2, 2]]",
                    help="JSON pairs [student, teacher] of decoder stages matched, in the order they run (0 = 12.5 Hz)")
    ap.add_argument("--anneal-steps", type=int, default=0,
                    help="the distillation weights fall linearly to 0 over these first steps (0: constant)")
    ap.add_argument("--inherit-quantizer", action="store_true",
                    help="the distilled student starts with the teacher's quantizer (distill.inherit_quantizer)")
    ap.add_argument("--students", default="alone,distilled",
                    help="which students to train (comma-separated); one alone is for trying distill settings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    distill = {"teacher": args.teacher, "kl": 0.0, "latent": args.latent_weight, "audio": args.audio_weight, "task": 1.0,
               "hidden": args.hidden_weight, "hidden_layers": json.loads(args.hidden_layers),
               "anneal_steps": args.anneal_steps, "inherit_quantizer": args.inherit_quantizer}
    results = {}
    for name, block in (("alone", None), ("distilled", distill)):
        if name not in args.students.split(","):
            continue
        with tempfile.TemporaryDirectory() as out:
            mel, score, seconds, codec = train_student(args, out, block)
        results[name] = {"mel": mel, "stoi_q16": score, "train_seconds": seconds}
    teacher = CATModel.from_pretrained(args.teacher)
    results["teacher"] = {"stoi_q16": held_out_stoi(teacher, args.val_manifest, args.stoi_items, 16)}
    params = sum(p.numel() for p in codec.parameters())
    teacher_params = sum(p.numel() for p in teacher.parameters())

    names = [n for n in ("alone", "distilled") if n in results]
    print(f"\nstudent {params / 1e6:.1f} M parameters, teacher {teacher_params / 1e6:.1f} M; {args.steps} steps each")
    print(f"{'held-out':14}" + "".join(f"{n:>11}" for n in names) + ("   ratio" if len(names) == 2 else ""))
    rows = [(key, [results[n]["mel"][key] for n in names]) for key in results[names[0]]["mel"]]
    rows.append(("STOI q16", [results[n]["stoi_q16"] for n in names]))
    rows.append(("train s", [results[n]["train_seconds"] for n in names]))
    for key, values in rows:
        ratio = f"{values[1] / values[0]:8.2f}" if len(values) == 2 and values[0] else ""
        print(f"{key:14}" + "".join(f"{v:11.3f}" for v in values) + ratio)
    print(f"teacher STOI q16 {results['teacher']['stoi_q16']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), "student_params": params, **results}, indent=2, default=str))


if __name__ == "__main__":
    main()
