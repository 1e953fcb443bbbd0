"""The `codec` training task: trains a CAT codec end to end with the shared trainer.

    python -m training codec --config configs/codec_small_cpu.yaml

Generator = codec (+ the training-only semantic head); discriminator = multi-period + complex-STFT.
Phase 1 (steps < adversarial_start): multi-scale mel + commitment + codebook (+ semantic, pitch, voicing, harmonic
amplitude and intelligibility losses, where weighted).
The semantic head reads whole transcribed utterances: `semantic_manifests` (a batch each step beside the
reconstruction crops), or else the reconstruction batch's items that were short enough not to be cropped.
With `gta_manifests`, crops of ground-truth-aligned codes (a TTS model's predictions for real audio) are decoded
beside them and scored against that audio with the same reconstruction losses.
Phase 2: adds LSGAN adversarial and normalised feature-matching losses, and trains the discriminator.
Weights default to the published ones (DESIGN.md): 20 sem, 15 rec, 0.25 commit, 1 codebook, 1 adv, 2 feat.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from training.data import AudioBatch, AudioDataset, collate_audio
from training.data.aligned_codes import AlignedCodesDataset
from training.distill import DistillConfig, Distiller, DistillSignals, FrozenTeacher
from training.task import Models, StepOutput, Task, register_task
from training.warm_start import copy_matching_tensors

from .audio import load_audio, save_audio
from .discriminators import CodecDiscriminator
from .intelligibility import IntelligibilityLoss
from .losses import (
    CodecLossWeights,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    harmonic_amplitude_loss,
    pitch_losses,
)
from .mel import MultiScaleMelLoss
from .modeling_cat import CATModel, CATOutput
from .pitch import PitchTrack, estimate_pitch
from .presets import PRESETS, preset_config
from .semantic import SemanticHead, SemanticHeadConfig

TASK_DEFAULTS: dict[str, Any] = {
    "model": "cat-small-16k",  # preset name (fresh init) or a saved folder (continue from its weights)
    "model_overrides": {},  # CATConfig fields to change, e.g. {num_quantizers: 16}
    "init_from": None,  # a saved model folder: its tensors of matching name and shape start the fresh model
    "freeze_encoder": False,  # train the decoder only: encoder and quantizer, hence the codes, stay as they are
    "train_manifests": [],  # paths, or [path, weight] pairs
    "val_manifests": [],
    "crop_seconds": 1.0,
    "val_crop_seconds": 4.0,
    "gain_db": [-6.0, 3.0],
    "adversarial_start": 5000,
    "quantizer_warmup_steps": 1000,  # continuous latents fade out linearly over these first steps
    "loss_weights": {},
    "discriminator": {},
    "semantic": {"enabled": True},
    # whole transcribed utterances for the semantic head, `semantic_batch_size` of them each step beside the
    # reconstruction crops (a crop's words are unknown); empty: the reconstruction batch's uncropped items
    "semantic_manifests": [],
    "semantic_val_manifests": [],  # logged as val_semantic (the head's loss on held-out utterances, all codebooks)
    "semantic_val_items": 48,  # spread evenly over the held-out manifests
    "semantic_batch_size": 4,
    "semantic_max_seconds": 4.0,
    "semantic_warmup_steps": 0,  # the head first learns on detached codes: a fresh head's gradient stays out
    "val_num_quantizers": [1, 4, 16, 32],
    "val_samples": 2,
    # ground-truth-aligned codes (`python -m tts.teacher_forced`): audio with the codes a TTS model predicts for it.
    # `gta_batch_size` crops of `gta_crop_frames` frames each step are decoded from those codes and scored against
    # the real audio with the reconstruction losses, times `gta_weight`: the decoder learns to render imperfect codes
    "gta_manifests": [],
    "gta_batch_size": 4,
    "gta_crop_frames": 13,
    "gta_weight": 1.0,
}


@contextmanager
def decoder_stage_outputs(codec: CATModel, enabled: bool = True) -> Iterator[list[torch.Tensor]]:
    """While inside, collects each decoder stage's output [B, T_i, D_i] in the order the stages run (the 12.5 Hz
    stage first, the one before the output head last): hidden states for distillation, with no change to the model."""
    outputs: list[torch.Tensor] = []
    stages = codec.decoder.stages if enabled else []
    handles = [stage.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for stage in stages]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def decoder_stage_dims(config) -> list[int]:
    """The widths of `decoder_stage_outputs`, in the same order."""
    return [config.encoder_input_dims[i] if i > 0 else config.decoder_output_dim for i in reversed(range(config.num_stages))]


@dataclass
class GeneratorOutput:
    """What `CodecGenerator` returns: the codec's pass over the batch, the semantic and distillation losses (0 when
    disabled) with the distillation's parts, and the decoder's pass over ground-truth-aligned codes (None without)."""

    codec: CATOutput
    semantic_loss: torch.Tensor
    distill_loss: torch.Tensor
    distill_logs: dict[str, float]
    gta: CATOutput | None = None


class CodecGenerator(nn.Module):
    """What the generator optimizer trains: the codec and, when enabled, the semantic head and the
    distillation projections."""

    def __init__(self, codec: CATModel, semantic: SemanticHead | None, distiller: Distiller | None = None) -> None:
        super().__init__()
        self.codec = codec
        self.semantic = semantic
        self.distiller = distiller

    def forward(
        self,
        audio: torch.Tensor,
        padding_mask: torch.Tensor | None,
        texts: list[str | None],
        teacher: DistillSignals | None = None,
        semantic_batch: AudioBatch | None = None,
        detach_semantic: bool = False,
        gta_codes: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        """The semantic head reads `semantic_batch` when given, else the batch's own `texts`; `detach_semantic`
        keeps its gradient out of the codec. `gta_codes` [B', K, F] are decoded too (`decode_codes`).
        Everything trainable runs inside this forward, as DDP requires."""
        wants_hidden = self.distiller is not None and teacher is not None and self.distiller.config.hidden > 0
        with decoder_stage_outputs(self.codec, wants_hidden) as hidden:
            out = self.codec(audio, padding_mask=padding_mask)
        semantic_loss = audio.new_zeros(())
        if self.semantic is not None and semantic_batch is not None:
            semantic_loss = self.transcript_loss(semantic_batch, detach_semantic)
        elif self.semantic is not None:
            quantized = out.quantized_representation
            semantic_loss = self.semantic(quantized.detach() if detach_semantic else quantized, out.code_lengths, texts)
        distill_loss, distill_logs = audio.new_zeros(()), {}
        if self.distiller is not None and teacher is not None:
            student_audio = out.audio_values[..., : audio.shape[-1]]
            if padding_mask is not None:
                student_audio = student_audio * padding_mask[:, None, :].to(student_audio.dtype)
            student = DistillSignals(latents=out.encoder_latents, audio=student_audio, hidden=hidden)
            distill_loss, distill_logs = self.distiller(student, teacher)
        gta = None if gta_codes is None else self.decode_codes(gta_codes)
        return GeneratorOutput(out, semantic_loss, distill_loss, distill_logs, gta)

    def decode_codes(self, codes: torch.Tensor) -> CATOutput:
        """Codes [B, K, F] -> the decoder's audio [B, 1, F * hop] and harmonic controls, differentiable (for training
        the decoder on codes that did not come from its own encoder)."""
        audio, controls = self.codec.decode_with_controls(codes)
        return CATOutput(
            audio_values=audio,
            pitch_logits=None if controls is None else controls.pitch_logits,
            voicing_logits=None if controls is None else controls.voicing_logits,
            harmonic_log_envelope=None if controls is None else controls.log_envelope,
        )

    def transcript_loss(self, batch: AudioBatch, detach: bool = False) -> torch.Tensor:
        """The semantic head's loss on whole utterances, read through the encoder and quantizer only (training
        and validation of the semantic stream); `detach` keeps its gradient out of the codec."""
        q, lengths = self.codec.quantize(batch.audio, batch.padding_mask)
        return self.semantic(q.quantized.detach() if detach else q.quantized, lengths, batch.texts)


def build_codec(spec: str, overrides: dict[str, Any], init_from: str | None = None) -> CATModel:
    """A fresh model from a preset name (optionally warm-started by `init_from`), or the weights of a saved folder."""
    if spec in PRESETS:
        model = CATModel(preset_config(spec, **overrides))
        if init_from is not None:
            warm_start(model, init_from)
        elif not model.config.unit_codes:
            calibrate_fresh_quantizer(model)
        return model
    if overrides or init_from is not None:
        raise ValueError("model_overrides and init_from apply to presets only; a saved folder keeps its own config and weights")
    return CATModel.from_pretrained(spec)


def freeze_encoder(model: CATModel) -> None:
    """Fix what the codes mean (e.g. once TTS / ASR data has been cached with them) and train the decoder only:
    no gradients for the encoder and the quantizer, and no dead-code revival or usage tracking in it.
    Quantizer dropout still trains the decoder at every bitrate."""
    model.encoder.requires_grad_(False)
    model.quantizer.requires_grad_(False)
    for layer in model.quantizer.layers:
        layer.dead_code_threshold = 0.0


CALIBRATION_AUDIO = Path(__file__).parent / "assets" / "vctk_p225_003.flac"


def calibration_latents(model: CATModel) -> torch.Tensor:
    """The quantizer-input latents [1, frames, quantizer_dim] of the bundled example recording, measured in eval
    mode (no quantizer dropout or dead-code revival); what quantizer layers are scaled on before training."""
    wav = torch.from_numpy(load_audio(CALIBRATION_AUDIO, model.config.sampling_rate))[None, None]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        q, _ = model.quantize(wav)
    model.train(was_training)
    return q.latents


def inherit_quantizer(student: CATModel, teacher: CATModel, distiller: Distiller) -> None:
    """`distill.inherit_quantizer`: copy the teacher's quantizer (every codebook and projection) into the student
    and make the latent projection the identity, so the student's encoder is pulled towards the very latents the
    teacher's codebooks were fitted to, and its decoder reads them from the first step."""
    mine, theirs = student.quantizer.state_dict(), teacher.quantizer.state_dict()
    differ = sorted(k for k in set(mine) | set(theirs) if k not in mine or k not in theirs or mine[k].shape != theirs[k].shape)
    if differ or student.config.unit_codes != teacher.config.unit_codes:
        raise ValueError(
            "distill.inherit_quantizer needs a student quantizer shaped like the teacher's (num_quantizers, "
            "codebook_size, codebook_dim, quantizer_dim, unit_codes): teacher "
            f"{teacher.config.num_quantizers} x {teacher.config.codebook_size} x {teacher.config.codebook_dim} on "
            f"{teacher.config.quantizer_dim}, student {student.config.num_quantizers} x {student.config.codebook_size} "
            f"x {student.config.codebook_dim} on {student.config.quantizer_dim}"
            + (f"; differing tensors: {', '.join(differ[:4])}" if differ else "; unit_codes differ")
        )
    student.quantizer.load_state_dict(theirs)
    projection = distiller.latent_projection
    if projection is not None and projection.in_features == projection.out_features:
        with torch.no_grad():
            projection.weight.copy_(torch.eye(projection.in_features))


def release_saved_unit_codes(model: CATModel) -> list[float]:
    """Warm-starting a DAC-style quantizer (`unit_codes: false`) from weights trained with unit codes: the copied
    layers are rescaled (`ResidualVectorQuantizer.release_unit_codes`) at the latent lengths of the bundled
    example recording, so the new run starts from the saved model's exact outputs."""
    for layer in model.quantizer.layers:  # the copied tensors are still unit-code weights; released below
        layer.unit_codes = True
    return model.quantizer.release_unit_codes(calibration_latents(model))


def calibrate_fresh_quantizer(model: CATModel) -> list[float]:
    """A fresh model with DAC-style quantizer layers: scale them (`ResidualVectorQuantizer.calibrate_fresh_layers`)
    on the latents of the bundled example recording, so the residual shrinks down the chain from step 0."""
    return model.quantizer.calibrate_fresh_layers(calibration_latents(model))


HEAD_PROJECTION = "decoder.stages.0.output_proj.weight"
INPUT_PROJECTION = "encoder.stages.0.input_proj.weight"


def warm_start(model: CATModel, folder: str) -> list[str]:
    """Copy into `model` every tensor of the saved model in `folder` whose name and shape match. Adding the
    harmonic branch to a model without one grows the last projection by the envelope outputs: its saved rows
    (the main head's inputs) are kept and the new rows start fresh. Adding `pitch_input` grows the first
    projection by the pitch features: the saved columns are kept and the new ones start at zero, so the
    encoder gives the saved model's codes until it learns to use them. Returns the names left wholly or
    partly at their fresh initialisation (printed)."""
    saved = CATModel.from_pretrained(folder)
    if model.config.unit_codes and not saved.config.unit_codes:
        raise ValueError(f"init_from {folder} has DAC-style quantizer layers (unit_codes false) and this model unit "
                         "codes: its entries would be read as directions; set model_overrides.unit_codes: false")
    source, target = dict(saved.state_dict()), model.state_dict()
    grown = []
    adds_harmonics = not saved.config.num_harmonics and model.config.num_harmonics
    if adds_harmonics and HEAD_PROJECTION in source and source[HEAD_PROJECTION].shape[0] == model.config.main_head_dim:
        merged = target[HEAD_PROJECTION].clone()
        merged[: model.config.main_head_dim] = source[HEAD_PROJECTION]
        source[HEAD_PROJECTION] = merged
        grown.append(HEAD_PROJECTION)
    patch = model.config.patch_size
    adds_pitch = not saved.config.pitch_input and model.config.pitch_input
    if adds_pitch and INPUT_PROJECTION in source and source[INPUT_PROJECTION].shape[1] == patch:
        merged = torch.zeros_like(target[INPUT_PROJECTION])
        merged[:, :patch] = source[INPUT_PROJECTION]
        source[INPUT_PROJECTION] = merged
        grown.append(INPUT_PROJECTION)
    left = copy_matching_tensors(model, source, origin=folder)  # the grown tensors now match too
    if saved.config.unit_codes and not model.config.unit_codes:
        scales = release_saved_unit_codes(model)
        print(f"init_from {folder}: unit codes released (entry lengths {min(scales):.2f}..{max(scales):.2f}; same outputs)")
    fresh = sorted(set(left) | set(grown))
    print(
        f"init_from {folder}: {len(target) - len(left)} of {len(target)} tensors copied ({len(grown)} grown, new rows fresh); "
        f"fresh: {', '.join(fresh) or 'none'}"
    )
    return fresh


def check_gta_codes(data: AlignedCodesDataset, codes_id: str) -> None:
    """Refuse GTA codes made with another encoder (their indices would mean other vectors to this decoder): the
    first line of each manifest is checked where its file records a weights id (`catcodec.codes_file`)."""
    seen: set[str] = set()
    for row in data.rows:
        if row["manifest"] in seen:
            continue
        seen.add(row["manifest"])
        with np.load(row["codes"], allow_pickle=False) as f:
            made_by = str(f["weights_id"]) if "weights_id" in f.files else ""
        if made_by and codes_id and made_by != codes_id:
            raise ValueError(f"task.gta_manifests: {row['manifest']} holds codes of a codec with weights id {made_by}, "
                             f"this codec's is {codes_id}: make them again with this codec's codes")


@register_task("codec")
class CodecTask(Task):
    # latents through a learned projection, output audio by mel distance, and decoder stage outputs (hidden states,
    # `distill.hidden_layers` indexing them in the order they run: 0 = the 12.5 Hz stage, -1 = before the head)
    supports_distillation = True

    def __init__(self, config) -> None:
        super().__init__(config)
        unknown = set(self.task_config) - set(TASK_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown codec task key(s): {', '.join(sorted(unknown))}")
        self.cfg = {**TASK_DEFAULTS, **self.task_config}
        if self.cfg["freeze_encoder"] and self.cfg["semantic"].get("enabled", True):
            raise ValueError("task.freeze_encoder: the semantic head only shapes the frozen encoder; set task.semantic.enabled=false")
        self.weights = CodecLossWeights.from_dict(self.cfg["loss_weights"])
        self.distill = DistillConfig.from_dict(config.distill)
        self.teacher: FrozenTeacher | None = None
        self.sampling_rate: int | None = None
        self.hop_length: int | None = None
        self.codes_id = ""  # the codec's weights id (what its codes mean), checked against the GTA codes' own
        self.mel_loss: MultiScaleMelLoss | None = None
        self.intelligibility_loss: IntelligibilityLoss | None = None
        self.semantic_train: AudioDataset | None = None
        self.semantic_val: AudioDataset | None = None
        self._semantic_draws = 0
        self.gta_train: AlignedCodesDataset | None = None

    # ---- models and data ----
    def build_models(self) -> dict[str, nn.Module]:
        codec = build_codec(self.cfg["model"], dict(self.cfg["model_overrides"]), self.cfg["init_from"])
        if self.cfg["freeze_encoder"]:
            freeze_encoder(codec)
        self.sampling_rate = codec.config.sampling_rate
        self.hop_length = codec.config.hop_length
        self.codes_id = codec.codes_fingerprint() if self.cfg["gta_manifests"] else ""
        self.mel_loss = MultiScaleMelLoss(self.sampling_rate)
        self.intelligibility_loss = IntelligibilityLoss(self.sampling_rate)
        sem_cfg = dict(self.cfg["semantic"])
        semantic = None
        if sem_cfg.pop("enabled", True):
            semantic = SemanticHead(codec.config.stage_output_dims[-1], SemanticHeadConfig(**sem_cfg))
        distiller = self._build_distiller(codec) if self.distill is not None else None
        return {
            "generator": CodecGenerator(codec, semantic, distiller),
            "discriminator": CodecDiscriminator(**self.cfg["discriminator"]),
        }

    def _build_distiller(self, student: CATModel) -> Distiller:
        """Load the frozen teacher codec and the projections from the student's latents to the teacher's."""
        teacher = CATModel.from_pretrained(self.distill.teacher)
        if teacher.config.sampling_rate != student.config.sampling_rate:
            raise ValueError(
                f"distill.teacher reads {teacher.config.sampling_rate} Hz audio, the student {student.config.sampling_rate} Hz"
            )
        self.teacher = FrozenTeacher(teacher)
        distiller = Distiller(
            self.distill,
            student_hidden_dim=decoder_stage_dims(student.config),
            teacher_hidden_dim=decoder_stage_dims(teacher.config),
            student_latent_dim=student.config.stage_output_dims[-1],
            teacher_latent_dim=teacher.config.stage_output_dims[-1],
            audio_distance=self._mel,
        )
        if self.distill.inherit_quantizer:
            inherit_quantizer(student, teacher, distiller)
        return distiller

    def _teacher_signals(self, batch: AudioBatch) -> DistillSignals | None:
        if self.teacher is None:
            return None
        with decoder_stage_outputs(self.teacher.model, self.distill.hidden > 0) as hidden:
            out = self.teacher.to(batch.audio.device)(batch.audio, padding_mask=batch.padding_mask)
        mask = batch.padding_mask[:, None, :].to(out.audio_values.dtype)
        audio = out.audio_values[..., : batch.audio.shape[-1]] * mask
        return DistillSignals(latents=out.encoder_latents, audio=audio, hidden=hidden)

    def _dataset(self, manifests: list, crop: float | None, gain, **filters) -> AudioDataset:
        return AudioDataset(manifests, self.sampling_rate, crop_seconds=crop, gain_db=gain, seed=self.config.seed, **filters)

    def _semantic_dataset(self, manifests: list, gain) -> AudioDataset | None:
        """Whole utterances with transcripts, up to `semantic_max_seconds` (None without manifests or head)."""
        if not manifests or not self.cfg["semantic"].get("enabled", True):
            return None
        return self._dataset(manifests, None, gain, max_seconds=self.cfg["semantic_max_seconds"], require_text=True)

    def build_datasets(self):
        if not self.cfg["train_manifests"]:
            raise ValueError("task.train_manifests is empty: build manifests first (python -m training.data.build_manifests)")
        train = self._dataset(self.cfg["train_manifests"], self.cfg["crop_seconds"], self.cfg["gain_db"])
        val = None
        if self.cfg["val_manifests"]:
            val = self._dataset(self.cfg["val_manifests"], self.cfg["val_crop_seconds"], None)
        self.semantic_train = self._semantic_dataset(self.cfg["semantic_manifests"], self.cfg["gain_db"])
        self.semantic_val = self._semantic_dataset(self.cfg["semantic_val_manifests"], None)
        if self.cfg["gta_manifests"]:
            self.gta_train = AlignedCodesDataset(self.cfg["gta_manifests"], self.sampling_rate, self.hop_length,
                                                 self.cfg["gta_crop_frames"], seed=self.config.seed)
            check_gta_codes(self.gta_train, self.codes_id)
        return train, val

    def _draw(self, data, size: int, step: int, key: int) -> list[dict]:
        """`size` distinct items of a side stream (`set_epoch` datasets read beside the main batches), drawn from
        (seed, rank, step, key), so ranks differ; the stream's epoch (one dataset's worth of draws) is set first."""
        n = min(size, len(data))
        epoch = step * n // len(data)
        if epoch != data.epoch:
            data.set_epoch(epoch)
        rank = dist.get_rank() if dist.is_initialized() else 0
        picks = np.random.default_rng((self.config.seed, rank, step, key)).choice(len(data), size=n, replace=False)
        return [data[int(i)] for i in picks]

    def _semantic_batch(self, step: int) -> AudioBatch | None:
        """`semantic_batch_size` utterances drawn from (seed, rank, step, draw), so ranks differ. Its epochs
        (one dataset's worth of draws) re-draw the sources' fractional mixing shares and the gains."""
        if self.semantic_train is None:
            return None
        items = self._draw(self.semantic_train, self.cfg["semantic_batch_size"], step, self._semantic_draws)
        self._semantic_draws += 1
        return collate_audio(items)

    def _gta_batch(self, step: int) -> tuple[AudioBatch, torch.Tensor] | None:
        """`gta_batch_size` frame-aligned crops (audio, codes [B, K, F]) drawn from (seed, rank, step), so ranks
        differ; each pass over the data (an epoch) crops the files afresh. None without `gta_manifests`."""
        if self.gta_train is None:
            return None
        items = self._draw(self.gta_train, self.cfg["gta_batch_size"], step, 1)
        if len({it["codes"].shape[0] for it in items}) > 1:
            raise ValueError(f"task.gta_manifests: codes with different numbers of codebooks in one batch "
                             f"({', '.join(str(it['codes'].shape[0]) for it in items)}); make them at one bitrate")
        return collate_audio(items), torch.stack([it["codes"] for it in items])

    def collate(self, items: list[dict]) -> AudioBatch:
        return collate_audio(items)

    def batch_size_of(self, batch: AudioBatch) -> int:
        return len(batch)

    def find_unused_parameters(self, name: str) -> bool:
        # batches without transcripts leave the semantic head unused
        return name == "generator" and bool(self.cfg["semantic"].get("enabled", True))

    # ---- losses ----
    def _mel(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        with torch.autocast(estimate.device.type, enabled=False):  # log-mel needs fp32
            return self.mel_loss.to(estimate.device)(estimate.float(), reference.float())

    def _pitch_target(self, codec: CATModel, batch: AudioBatch) -> tuple[PitchTrack, torch.Tensor]:
        """A YIN track of the input audio and the mask of its frames that lie inside each item."""
        hop = codec.config.patch_size
        head = codec.decoder.harmonic
        target = estimate_pitch(batch.audio, codec.config.sampling_rate, hop, fmin=head.fmin, fmax=head.fmax)
        frames = torch.arange(target.f0.shape[1], device=batch.audio.device)
        frame_mask = (frames[None, :] + 1) * hop <= batch.lengths.to(batch.audio.device)[:, None]
        return target, frame_mask

    def _pitch_losses(self, codec: CATModel, out: CATOutput, batch: AudioBatch, target: tuple[PitchTrack, torch.Tensor] | None = None):
        """The harmonic branch's pitch and voicing losses against a YIN track of the input audio."""
        track, frame_mask = target if target is not None else self._pitch_target(codec, batch)
        return pitch_losses(out.pitch_logits, out.voicing_logits, track, codec.decoder.harmonic, frame_mask)

    def _reconstruction_losses(self, codec: CATModel, out: CATOutput, batch: AudioBatch, prefix: str = "") -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted losses of decoded audio against the batch's audio: multi-scale mel, intelligibility, and the
        harmonic branch's pitch, voicing and harmonic amplitudes (where weighted): (loss, logs named with `prefix`)."""
        w = self.weights
        recon = out.audio_values[..., : batch.audio.shape[-1]] * batch.padding_mask[:, None, :].to(out.audio_values.dtype)
        mel = self._mel(recon, batch.audio)
        loss = w.reconstruction * mel
        logs = {"mel": float(mel.detach())}
        if w.intelligibility > 0:
            intelligibility = self.intelligibility_loss.to(batch.audio.device)(recon, batch.audio)
            loss = loss + w.intelligibility * intelligibility
            logs["intelligibility"] = float(intelligibility.detach())
        if out.pitch_logits is not None:
            target = self._pitch_target(codec, batch)
            pitch = self._pitch_losses(codec, out, batch, target)
            loss = loss + w.pitch * pitch.pitch + w.voicing * pitch.voicing
            logs.update(pitch=float(pitch.pitch.detach()), voicing=float(pitch.voicing.detach()), pitch_accuracy=pitch.accuracy)
            if w.harmonic_amplitude > 0:
                amplitude = harmonic_amplitude_loss(out.harmonic_log_envelope, batch.audio, target[0], codec.decoder.harmonic, target[1])
                loss = loss + w.harmonic_amplitude * amplitude
                logs["harmonic_amplitude"] = float(amplitude.detach())
        return loss, {prefix + k: v for k, v in logs.items()}

    def training_step(self, models: Models, batch: AudioBatch, step: int) -> StepOutput:
        device = next(models.raw("generator").parameters()).device
        batch = batch.to(device)
        w = self.weights
        warmup = self.cfg["quantizer_warmup_steps"]
        codec = models.raw("generator").codec
        codec.quantizer.bypass = max(0.0, 1.0 - step / warmup) if warmup > 0 else 0.0
        teacher = self._teacher_signals(batch)
        semantic_batch = self._semantic_batch(step)
        gta_batch = self._gta_batch(step)
        gen = models["generator"](
            batch.audio, batch.padding_mask, batch.texts, teacher,
            semantic_batch=None if semantic_batch is None else semantic_batch.to(device),
            detach_semantic=step < self.cfg["semantic_warmup_steps"],
            gta_codes=None if gta_batch is None else gta_batch[1].to(device),
        )
        out = gen.codec
        recon = out.audio_values * batch.padding_mask[:, None, :].to(out.audio_values.dtype)
        reconstruction, extra_logs = self._reconstruction_losses(codec, out, batch)
        loss_g = (
            reconstruction
            + w.commitment * out.commitment_loss
            + w.codebook * out.codebook_loss
            + w.residual * out.residual_loss
            + w.semantic * gen.semantic_loss
        )
        if gen.gta is not None:
            gta_loss, gta_logs = self._reconstruction_losses(codec, gen.gta, gta_batch[0].to(device), prefix="gta_")
            loss_g = loss_g + self.cfg["gta_weight"] * gta_loss
            extra_logs.update(gta_logs)
        logs = {
            **extra_logs,
            "quantizer_bypass": codec.quantizer.bypass,
            "commitment": float(out.commitment_loss.detach()),
            "codebook": float(out.codebook_loss.detach()),
            "residual": float(out.residual_loss.detach()),
            "semantic": float(gen.semantic_loss.detach()),
        }
        losses = {"generator": loss_g}
        if step >= self.cfg["adversarial_start"]:
            both = models["discriminator"](torch.cat([batch.audio, recon.detach()], dim=0))
            b = batch.audio.shape[0]
            d_real = [(logits[:b], [f[:b] for f in feats]) for logits, feats in both]
            d_fake = [(logits[b:], [f[b:] for f in feats]) for logits, feats in both]
            losses["discriminator"] = discriminator_loss(d_real, d_fake)
            disc = models.raw("discriminator")  # no DDP sync: its gradient from this loss is not wanted
            fake_out = disc(recon)
            # feature-matching targets: the real half of the pass above (the same weights), not a third pass
            real_out = [(logits.detach(), [f.detach() for f in feats]) for logits, feats in d_real]
            adv = generator_adversarial_loss(fake_out)
            feat = feature_matching_loss(real_out, fake_out)
            losses["generator"] = loss_g + w.adversarial * adv + w.feature * feat
            logs.update(adversarial=float(adv.detach()), feature=float(feat.detach()), discriminator=float(losses["discriminator"].detach()))
        if self.distill is not None:
            scale = self.distill.scale_at(step)
            losses["generator"] = self.distill.task * losses["generator"] + scale * gen.distill_loss
            logs.update(gen.distill_logs, distill_scale=scale)
        return StepOutput(losses, logs)

    # ---- validation ----
    @torch.no_grad()
    def validate(self, models: Models, batches: Iterable[AudioBatch], step: int, sample_dir: Path | None) -> dict[str, float]:
        codec: CATModel = models.raw("generator").codec
        device = next(codec.parameters()).device
        levels = [n for n in self.cfg["val_num_quantizers"] if n <= codec.config.num_quantizers]
        sums = {n: 0.0 for n in levels}
        correlations = {n: 0.0 for n in levels}
        envelope = self.intelligibility_loss.correlation.to(device)
        count = 0
        written = 0
        pitch_accuracy = 0.0
        for batch in batches:
            batch = batch.to(device)
            for n in levels:
                codes = codec.encode(batch.audio, batch.padding_mask, num_quantizers=n)
                audio = codec.decode(codes.audio_codes, codes.code_lengths).audio_values[..., : batch.audio.shape[-1]]
                for i in range(len(batch)):
                    length = int(batch.lengths[i])
                    sums[n] += float(self._mel(audio[i : i + 1, :, :length], batch.audio[i : i + 1, :, :length]))
                    correlations[n] += float(envelope(audio[i : i + 1, :, :length].float(), batch.audio[i : i + 1, :, :length].float()))
                    if sample_dir is not None and n == levels[-1] and written < self.cfg["val_samples"]:
                        save_audio(sample_dir / f"{written}_original.wav", batch.audio[i, :, :length], self.sampling_rate)
                        for m in levels:
                            c = codec.encode(batch.audio[i : i + 1, :, :length], num_quantizers=m).audio_codes
                            save_audio(sample_dir / f"{written}_q{m}.wav", codec.decode(c).audio_values[..., :length], self.sampling_rate)
                        written += 1
            if codec.decoder.harmonic is not None:
                out = codec(batch.audio, padding_mask=batch.padding_mask)
                pitch_accuracy += self._pitch_losses(codec, out, batch).accuracy * len(batch)
            count += len(batch)
        metrics = {f"mel_q{n}": s / max(count, 1) for n, s in sums.items()}
        # the STOI-style envelope correlation (catcodec.intelligibility): a quick intelligibility figure per bitrate
        metrics.update({f"envelope_q{n}": c / max(count, 1) for n, c in correlations.items()})
        if codec.decoder.harmonic is not None:
            metrics["pitch_accuracy"] = pitch_accuracy / max(count, 1)
        if self.semantic_val is not None:
            metrics["semantic"] = self._semantic_val_loss(models.raw("generator"), device)
        return metrics

    def _semantic_val_loss(self, generator: CodecGenerator, device: torch.device) -> float:
        """The head's mean loss on `semantic_val_items` held-out utterances spread over the manifests, read
        through all codebooks: how much of the words the codes and the head can recover."""
        size = self.cfg["semantic_batch_size"]
        count = min(len(self.semantic_val), self.cfg["semantic_val_items"])
        picks = np.linspace(0, len(self.semantic_val) - 1, count).round().astype(int).tolist()
        total = 0.0
        for start in range(0, count, size):
            batch = collate_audio([self.semantic_val[i] for i in picks[start : start + size]]).to(device)
            total += float(generator.transcript_loss(batch)) * len(batch)
        return total / max(count, 1)

    def on_save(self, models: Models, output_dir: Path, step: int) -> None:
        generator: CodecGenerator = models.raw("generator")
        generator.codec.save_pretrained(output_dir / "model")
        if generator.semantic is not None:
            torch.save(generator.semantic.state_dict(), output_dir / "semantic_head.pt")


__all__ = ["CodecTask", "CodecGenerator", "GeneratorOutput", "TASK_DEFAULTS"]
