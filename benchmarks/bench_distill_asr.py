"""Does distillation help a small ASR? A half-width student trained alone vs distilled from the ASR teacher.

    python benchmarks/bench_distill_asr.py --teacher asr/pretrained/cat-asr-small [--steps 1000] [--threads 1]
        [--temperature 2] [--kl-weight 0.25] [--hidden-weight 1] [--hidden-layers "[[0, 0]]"] [--anneal-steps N]
        [--students alone,distilled] [-o CONFIG_OVERRIDE ...]

Both students start from the same initialisation and see the same batches in the same order for the same
number of steps; the distilled one also matches the teacher's softened character distributions (KL,
temperature 2, weight 0.25) and its last hidden states at the audio positions, which the CTC head reads
(through a learned projection, weight 1; `--hidden-layers "[[-1, -1]]"` matches the text positions' instead:
it helped less, see the README). Prints held-out
loss (teacher-forced nats per character: smooth, so it shows a difference while transcripts are still poor)
and character and word error rates (greedy) of both, and of the teacher for scale. Needs the codes manifests
of configs/asr_small_cpu.yaml (`catcodec tokenize`), or those named by `-o task.train_manifests=[...]`.
Not a test: figures depend on the machine and the budget.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from asr.decoding import transcribe
from asr.metrics import character_error_rate, word_error_rate
from asr.modeling_asr import CATASRModel
from asr.training_task import ASRTask
from training.config import load_config
from training.trainer import Trainer
from tts.text import CharTokenizer
from tts.training_task import CodesTextDataset, collate_tts

REPO = Path(__file__).resolve().parents[1]


def held_out_set(manifests: list[str], num_quantizers: int) -> CodesTextDataset:
    """The held-out utterances, read once for every model compared."""
    return CodesTextDataset(manifests, num_quantizers, 10_000, CharTokenizer())


@torch.no_grad()
def held_out_error_rates(model: CATASRModel, data: CodesTextDataset, items: int) -> tuple[float, float]:
    """(CER, WER) of greedy transcripts of the first `items` held-out utterances with every codebook."""
    tokenizer = data.tokenizer
    codes, references = [], []
    for i in range(min(items, len(data))):
        item = data[i]
        codes.append(item["codes"])
        references.append(" ".join(tokenizer.decode(item["text"].tolist()).split()))
    hypotheses = transcribe(model.eval(), codes, tokenizer=tokenizer)
    return character_error_rate(references, hypotheses), word_error_rate(references, hypotheses)


@torch.no_grad()
def held_out_loss(model: CATASRModel, data: CodesTextDataset, items: int, batch_size: int = 16) -> float:
    """Teacher-forced cross-entropy (nats per character, every codebook) on the first `items` held-out utterances."""
    model.eval()
    total, count = 0.0, 0
    end = min(items, len(data))
    for start in range(0, end, batch_size):
        batch = collate_tts([data[i] for i in range(start, min(start + batch_size, end))])
        levels = torch.full((len(batch["codes"]),), model.config.num_quantizers)
        out = model(**batch, levels=levels)
        total += float(F.cross_entropy(out.logits.float(), out.labels, reduction="sum"))
        count += len(out.labels)
    return total / max(count, 1)


def train_student(args, out: str, teacher_config, distill: dict | None) -> tuple[CATASRModel, float]:
    width = teacher_config.hidden_size // 2
    overrides = [
        f"max_steps={args.steps}",
        f"threads={args.threads}",
        f"output_dir={out}",
        "checkpoint_every=0",
        "val_every=0",
        "progress=true",
        f"seed={args.seed}",
        "time_limit_minutes=null",
        f"schedule.warmup_steps={max(1, args.steps // 10)}",
        f"task.model.hidden_size={width}",
        f"task.model.intermediate_size={4 * width}",
        f"task.model.num_heads={max(1, teacher_config.num_heads // 2)}",
        f"task.model.num_quantizers={teacher_config.num_quantizers}",
        *args.override,
    ]
    if distill is not None:
        overrides.append(f"distill={json.dumps(distill)}")
    config = load_config(args.config, overrides)
    task = ASRTask(config)
    trainer = Trainer(config, task)
    start = time.perf_counter()
    trainer.fit()
    return task.student(trainer.models), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs" / "asr_small_cpu.yaml"))
    ap.add_argument("--teacher", required=True, help="a trained CAT-ASR folder (e.g. runs/asr_small_cpu/model)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--items", type=int, default=100, help="held-out utterances transcribed")
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--kl-weight", type=float, default=0.25)
    ap.add_argument("--hidden-weight", type=float, default=1.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--hidden-layers", default="[[0, 0]]",
                    help="JSON pairs [student, teacher] of hidden states matched: 0 = audio positions, 1 / -1 = text")
    ap.add_argument("--anneal-steps", type=int, default=0,
                    help="the distillation weights fall linearly to 0 over these first steps (0: constant)")
    ap.add_argument("--students", default="alone,distilled",
                    help="which students to train (comma-separated); one alone is for trying distill settings")
    ap.add_argument("--override", "-o", nargs="*", default=[], help="config overrides for both students, e.g. "
                    "'task.train_manifests=[data/synth_tts/train.codes.jsonl]'")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    teacher = CATASRModel.from_pretrained(args.teacher)
    val = held_out_set(load_config(args.config, args.override).task["val_manifests"], teacher.config.num_quantizers)
    distill = {"teacher": args.teacher, "kl": args.kl_weight, "hidden": args.hidden_weight,
               "hidden_layers": json.loads(args.hidden_layers),
               "temperature": args.temperature, "task": 1.0,
               "anneal_steps": args.anneal_steps}
    results = {}
    for name, block in (("alone", None), ("distilled", distill)):
        if name not in args.students.split(","):
            continue
        with tempfile.TemporaryDirectory() as out:
            student, seconds = train_student(args, out, teacher.config, block)
        cer, wer = held_out_error_rates(student, val, args.items)
        results[name] = {"loss": held_out_loss(student, val, args.items), "cer": cer, "wer": wer,
                         "train_seconds": seconds, "parameters": sum(p.numel() for p in student.parameters())}
    cer, wer = held_out_error_rates(teacher, val, args.items)
    results["teacher"] = {"loss": held_out_loss(teacher, val, args.items), "cer": cer, "wer": wer,
                          "parameters": sum(p.numel() for p in teacher.parameters())}

    print(f"\n{args.steps} steps each; held-out {args.items} utterances, greedy, all codebooks")
    print(f"{'model':10}{'params':>9}{'loss':>8}{'CER':>8}{'WER':>8}")
    for name, r in results.items():
        print(f"{name:10}{r['parameters'] / 1e6:8.1f}M{r['loss']:8.3f}{100 * r['cer']:7.1f}%{100 * r['wer']:7.1f}%")
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), **results}, indent=2, default=str))


if __name__ == "__main__":
    main()
