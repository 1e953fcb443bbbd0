"""The `asr` training task: CAT-ASR on codes cached by `catcodec tokenize`, with the shared trainer.

    catcodec tokenize data/manifests/train.jsonl --num-quantizers 8
    python -m training asr --config configs/asr_small_cpu.yaml

Items are (transcript, codes) pairs from one or more `*.codes.jsonl` manifests, read as the TTS task reads
them (`tts.training_task.CodesTextDataset`); batches are bucketed by length. Validation reports the loss
with every codebook and the character / word error rates of greedy transcripts of the first few items.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from catcodec import CATModel
from training.distill import DistillConfig, Distiller, DistillSignals, FrozenTeacher
from training.task import Models, StepOutput, Task, register_task
from training.warm_start import warm_start_code_reader
from tts.text import CharTokenizer
from tts.training_task import CodesTextBatches, CodesTextDataset, record_codec_weights

from .configuration_asr import CATASRConfig
from .decoding import transcribe
from .metrics import character_error_rate, word_error_rate
from .modeling_asr import CATASRModel

log = logging.getLogger("asr.training")

TASK_DEFAULTS: dict[str, Any] = {
    "model": {},  # CATASRConfig fields
    "train_manifests": [],  # *.codes.jsonl written by `catcodec tokenize`
    "val_manifests": [],
    "max_frames": 300,  # longer clips are left out (24 s at 12.5 frames/s)
    "num_buckets": 10,
    "val_transcribe_items": 8,  # validation items transcribed (greedy) for CER / WER
    "init_code_embeddings_from_codec": False,  # start code embeddings from the codec's code vectors
    "init_from": None,  # a trained CAT-ASR folder: its tensors of matching name and shape start the model
    # the codec (preset or folder) whose codes init_from learnt, when the run's codes are another codec's
    # (task.model.codec_name): its code tables are carried to the new codes (training.warm_start.transplant_init_codes)
    "init_codes_from": None,
}


class DistilledASR(nn.Module):
    """What the optimizer trains when distilling: the student and the projections of its hidden states."""

    def __init__(self, asr: CATASRModel, distiller: Distiller) -> None:
        super().__init__()
        self.asr = asr
        self.distiller = distiller

    def forward(self, teacher: DistillSignals, **batch) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """(student's own loss, distillation loss, its parts): both inside one forward, as DDP requires."""
        out = self.asr(**batch, output_hidden_states=True)
        student = DistillSignals(logits=out.logits, hidden=[out.audio_hidden_states, out.text_hidden_states])
        distill_loss, logs = self.distiller(student, teacher)
        return out.loss, distill_loss, logs


@register_task("asr")
class ASRTask(CodesTextBatches, Task):
    # softened KL on the characters' logits; projected last hidden states, `distill.hidden_layers` indexing
    # [audio positions (frames, the CTC head's input), text positions]: the default [[-1, -1]] matches the text's
    supports_distillation = True

    def __init__(self, config) -> None:
        super().__init__(config)
        unknown = set(self.task_config) - set(TASK_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown asr task key(s): {', '.join(sorted(unknown))}")
        self.cfg = {**TASK_DEFAULTS, **self.task_config}
        self.model_config = CATASRConfig(**{"text_vocab_size": CharTokenizer().vocab_size, **self.cfg["model"]})
        self.tokenizer = CharTokenizer()
        self.distill = DistillConfig.from_dict(config.distill)
        self.teacher: FrozenTeacher | None = None
        self.init_codes_id = ""  # codec weights id of the init_from model's codes ("" = none / not recorded)

    def build_models(self):
        model = CATASRModel(self.model_config)
        if self.cfg["init_from"] is not None:
            source = CATASRModel.from_pretrained(self.cfg["init_from"])
            self.init_codes_id = warm_start_code_reader(  # checked against the data's in build_datasets
                model, source, str(self.cfg["init_from"]), self.cfg["init_codes_from"], self.model_config.codec_name,
                self.model_config.num_quantizers)
        elif self.cfg["init_codes_from"] is not None:
            raise ValueError("task.init_codes_from needs task.init_from: the model whose code tables it carries over")
        elif self.cfg["init_code_embeddings_from_codec"]:
            codec = CATModel.from_pretrained(self.model_config.codec_name)
            model.init_code_embeddings(codec.code_vectors(self.model_config.num_quantizers))
            log.info("code embeddings start from the code vectors of %s", self.model_config.codec_name)
        if self.distill is None:
            return {"model": model}
        if self.distill.inherit_quantizer:
            raise ValueError("distill.inherit_quantizer is for codec students (an ASR model has no quantizer); remove it")
        teacher = CATASRModel.from_pretrained(self.distill.teacher)
        if teacher.config.text_vocab_size != model.config.text_vocab_size:
            raise ValueError("distill.teacher writes another character set than the student: both need the same tokenizer")
        self.teacher = FrozenTeacher(teacher)
        distiller = Distiller(self.distill, student_hidden_dim=model.config.hidden_size,
                              teacher_hidden_dim=teacher.config.hidden_size)
        return {"model": DistilledASR(model, distiller)}

    @staticmethod
    def student(models: Models) -> CATASRModel:
        """The ASR model being trained, with or without the distillation wrapper around it."""
        raw = models.raw("model")
        return raw.asr if isinstance(raw, DistilledASR) else raw

    def build_datasets(self):
        if not self.cfg["train_manifests"]:
            raise ValueError("task.train_manifests is empty: cache codes first (catcodec tokenize MANIFEST)")
        k, cap = self.model_config.num_quantizers, self.cfg["max_frames"]
        train = CodesTextDataset(self.cfg["train_manifests"], k, cap, self.tokenizer, seed=self.config.seed)
        log.info("asr data: %d items (%d left out)", len(train), train.skipped)
        val = CodesTextDataset(self.cfg["val_manifests"], k, cap, self.tokenizer) if self.cfg["val_manifests"] else None
        record_codec_weights(self.model_config, train, val)
        if self.init_codes_id not in ("", self.model_config.codec_weights_id):
            raise ValueError(
                f"init_from {self.cfg['init_from']} learnt codes of codec weights {self.init_codes_id}, but the training "
                f"codes are of {self.model_config.codec_weights_id}: tokenize again with that codec, or start fresh")
        return train, val

    def training_step(self, models: Models, batch, step: int) -> StepOutput:
        device = next(models.raw("model").parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        if self.teacher is None:
            out = models["model"](**batch)
            return StepOutput({"model": out.loss}, {} if out.ctc_loss is None else {"ctc": float(out.ctc_loss.detach())})
        k = self.teacher.model.config.num_quantizers
        t = self.teacher.to(device)(**{**batch, "codes": batch["codes"][:, :k]}, output_hidden_states=True)
        teacher = DistillSignals(logits=t.logits, hidden=[t.audio_hidden_states, t.text_hidden_states])
        task_loss, distill_loss, logs = models["model"](teacher, **batch)
        scale = self.distill.scale_at(step)
        logs.update(task_loss=float(task_loss.detach()), distill_scale=scale)
        return StepOutput({"model": self.distill.task * task_loss + scale * distill_loss}, logs)

    @torch.no_grad()
    def validate(self, models: Models, batches: Iterable, step: int, sample_dir) -> dict[str, float]:
        model = self.student(models)
        device = next(model.parameters()).device
        k = model.config.num_quantizers
        total, n = 0.0, 0
        codes, references = [], []
        for batch in batches:
            b = batch["codes"].shape[0]
            out = model(**{key: v.to(device) for key, v in batch.items()}, levels=torch.full((b,), k, device=device))
            total += float(out.loss)
            n += 1
            for i in range(b):
                if len(codes) < self.cfg["val_transcribe_items"]:
                    codes.append(batch["codes"][i, :, : int(batch["frame_lengths"][i])])
                    ids = batch["text_ids"][i, : int(batch["text_lengths"][i])].tolist()
                    references.append(self.tokenizer.decode(ids))
        if n == 0:
            return {}
        figures = {"loss": total / n}
        if codes:
            hypotheses = transcribe(model, codes, tokenizer=self.tokenizer)
            figures["cer"] = character_error_rate(references, hypotheses)
            figures["wer"] = word_error_rate(references, hypotheses)
            if sample_dir is not None:
                Path(sample_dir).mkdir(parents=True, exist_ok=True)
                lines = [f"{r}\t{h}\n" for r, h in zip(references, hypotheses)]
                (Path(sample_dir) / "transcripts.tsv").write_text("reference\thypothesis\n" + "".join(lines), encoding="utf-8")
        return figures

    def on_save(self, models: Models, output_dir: Path, step: int) -> None:
        self.student(models).save_pretrained(output_dir / "model")


__all__ = ["ASRTask"]
