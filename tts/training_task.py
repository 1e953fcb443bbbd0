"""The `tts` training task: CAT-TTS on codes cached by `catcodec tokenize`, with the shared trainer.

    catcodec tokenize data/synth/train.jsonl --num-quantizers 8
    python -m training tts --config configs/tts_small_cpu.yaml

Items are (transcript, codes) pairs from one or more `*.codes.jsonl` manifests; batches are bucketed by
length so padding stays small. Items whose transcript the text front-end refuses are left out (counted).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from catcodec import CATModel
from catcodec.codes_file import CodesFile, CodesFileError, read_codes
from training.data import BucketBatchSampler, normalise_sources
from training.task import Models, StepOutput, Task, register_task
from training.warm_start import warm_start_code_reader

from .alignment import text_gain, word_order_gain
from .configuration_tts import CATTTSConfig
from .modeling_tts import CATTTSModel
from .text import CharTokenizer, TextError, tokenizer_for

log = logging.getLogger("tts.training")

TASK_DEFAULTS: dict[str, Any] = {
    "model": {},  # CATTTSConfig fields
    "train_manifests": [],  # *.codes.jsonl written by `catcodec tokenize`
    "val_manifests": [],
    "max_frames": 300,  # longer clips are left out (24 s at 12.5 frames/s)
    "num_buckets": 10,
    "pair_prob": 0.0,  # share of training items that are two clips of one speaker in a row (voice prompting)
    # share of those pairs whose first clip comes without its transcript: a voice prompt given as audio only
    "prompt_text_dropout": 0.0,
    "init_code_embeddings_from_codec": False,  # start code embeddings from the codec's code vectors
    # guided attention (model.guided_attention_weight) for the first this-many steps only; None = every step.
    # Once the heads read the text along the diagonal the penalty is ~0, and its eager attention costs time.
    "guided_attention_steps": None,
    # a trained CAT-TTS folder (e.g. tts/pretrained/cat-tts-small): its tensors of matching name and shape start the
    # model, with a fresh optimizer and schedule (`--resume` continues a run of this machine instead)
    "init_from": None,
    # the codec (preset or folder) whose codes init_from learnt, when the run's codes are another codec's
    # (task.model.codec_name): its code tables are carried to the new codes (training.warm_start.transplant_init_codes)
    "init_codes_from": None,
}


def _read_cached_codes(path: Path) -> CodesFile:
    try:
        return read_codes(path)
    except CodesFileError as exc:
        raise RuntimeError(f"cached codes unreadable: {exc}; run catcodec tokenize again") from None


def same_codec_weights(ids_of: dict[str, str]) -> str:
    """The one codec weights id that made the codes of every named source ("" when none recorded one); refuses
    sources tokenized by different codec weights, whose code values mean different sounds."""
    known = {source: i for source, i in ids_of.items() if i}
    if len(set(known.values())) > 1:
        listed = "; ".join(f"{source}: {i}" for source, i in known.items())
        raise ValueError(f"codes made by different codec weights ({listed}): tokenize them again with one codec")
    return next(iter(known.values()), "")


class CodesTextDataset(Dataset):
    """(text ids, codes [K, F]) pairs from codes manifests; only lines with a usable transcript.

    A manifest given as [path, weight] is read `weight` times over (2: every line twice; 0.5: a fixed half of
    its lines, drawn once), to raise or lower a source's share without copying files."""

    def __init__(self, manifests: list[str | Path | tuple[str | Path, float]], num_quantizers: int, max_frames: int,
                 tokenizer: CharTokenizer | None = None, seed: int = 0) -> None:
        self.tokenizer = tokenizer or CharTokenizer()
        self.num_quantizers = num_quantizers
        self.items: list[tuple[list[int], Path]] = []
        self.frames: list[int] = []
        self.speakers: list[str | None] = []
        self.partners: list[int | None] = []  # set by `pair_same_speaker`
        self.audio_only_prompt: list[bool] = []  # paired items whose first clip's transcript is left out
        self.skipped = 0
        self.codec_weights_id = ""  # of the codec that made the codes (one per manifest, all equal), "" if unknown
        ids_of: dict[str, str] = {}
        for k, (manifest, weight) in enumerate(normalise_sources(manifests)):
            first = len(self.items)
            for line in manifest.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                if not row.get("text") or "codes" not in row or not 0 < int(row["num_frames"]) <= max_frames:
                    self.skipped += 1
                    continue
                try:
                    ids = self.tokenizer.encode(row["text"])
                except TextError:
                    self.skipped += 1
                    continue
                self.items.append((ids, manifest.parent / row["codes"]))
                self.frames.append(int(row["num_frames"]))
                self.speakers.append(row.get("speaker"))
            if len(self.items) > first:
                ids_of[str(manifest)] = _read_cached_codes(self.items[first][1]).weights_id
            self._reweight(first, weight, np.random.default_rng([seed, k]))
        if not self.items:
            raise ValueError(f"no usable (text, codes) items in {', '.join(map(str, manifests))}")
        self.codec_weights_id = same_codec_weights(ids_of)
        self.partners = [None] * len(self.items)
        self.audio_only_prompt = [False] * len(self.items)

    def _reweight(self, first: int, weight: float, rng: np.random.Generator) -> None:
        """Repeat the items from index `first` on `weight` times over: whole copies, then a drawn share."""
        if weight == 1.0:
            return
        lists = (self.items, self.frames, self.speakers)
        block = [lst[first:] for lst in lists]
        whole, frac = divmod(weight, 1.0)
        picked = np.sort(rng.permutation(len(block[0]))[: round(frac * len(block[0]))])
        for lst, own in zip(lists, block):
            del lst[first:]
            lst.extend(own * int(whole))
            lst.extend(own[i] for i in picked)

    def pair_same_speaker(self, prob: float, max_frames: int, seed: int, prompt_text_dropout: float = 0.0) -> int:
        """Make a `prob` share of the items two clips of one speaker in a row ([text a, text b ; frames a,
        frames b]), which is what a voice prompt and its transcript look like at synthesis; a
        `prompt_text_dropout` share of those leaves text a out ([text b ; frames a, frames b], its text placed
        from frame a on), which is what a voice prompt without its transcript looks like. Drawn once from `seed`
        (items stay a function of their index; `frames` gives the joined lengths for bucketing); returns how many
        items were paired."""
        rng = np.random.default_rng(seed)
        drops = np.random.default_rng([seed, 1]).random(len(self.items)) < prompt_text_dropout
        by_speaker: dict[str, list[int]] = {}
        for i, speaker in enumerate(self.speakers):
            if speaker is not None:
                by_speaker.setdefault(speaker, []).append(i)
        alone = list(self.frames)  # one clip's frames (`frames` grows for the paired items)
        paired = 0
        for i in range(len(self.items)):
            others = [j for j in by_speaker.get(self.speakers[i], []) if j != i]
            if not others or rng.random() >= prob:
                continue
            j = others[int(rng.integers(len(others)))]
            joined_text = len(self.items[i][0]) + len(self.items[j][0]) - 1
            if alone[i] + alone[j] > max_frames or joined_text > self.tokenizer.max_characters:
                continue
            self.partners[i] = j
            self.frames[i] = alone[i] + alone[j]
            self.audio_only_prompt[i] = bool(drops[i])
            paired += 1
        return paired

    def __len__(self) -> int:
        return len(self.items)

    def _clip(self, i: int) -> tuple[list[int], np.ndarray]:
        ids, path = self.items[i]
        codes = _read_cached_codes(path).codes
        if codes.shape[0] < self.num_quantizers:
            raise RuntimeError(f"{path} has {codes.shape[0]} codebooks, the model needs {self.num_quantizers}")
        return ids, codes[: self.num_quantizers].astype(np.int64)

    def __getitem__(self, i: int) -> dict:
        ids, codes = self._clip(i)
        j = self.partners[i]
        if j is None:
            return {"text": torch.tensor(ids), "codes": torch.from_numpy(codes)}
        ids_b, codes_b = self._clip(j)
        joined = np.concatenate([codes, codes_b], axis=1)
        if self.audio_only_prompt[i]:  # [BOS, b..., EOS], its text placed from the first frame of b on
            return {"text": torch.tensor(ids_b), "codes": torch.from_numpy(joined), "text_offset": codes.shape[1]}
        # [BOS, a..., EOS] + [BOS, b..., EOS] -> [BOS, a..., ' ', b..., EOS]
        ids = ids[:-1] + [self.tokenizer.id_of(" ")] + ids_b[1:]
        return {"text": torch.tensor(ids), "codes": torch.from_numpy(joined)}


def collate_tts(items: list[dict]) -> dict[str, torch.Tensor]:
    b = len(items)
    lt = torch.tensor([len(it["text"]) for it in items])
    lf = torch.tensor([it["codes"].shape[1] for it in items])
    k = items[0]["codes"].shape[0]
    text = torch.zeros(b, int(lt.max()), dtype=torch.long)
    codes = torch.zeros(b, k, int(lf.max()), dtype=torch.long)
    for i, it in enumerate(items):
        text[i, : lt[i]] = it["text"]
        codes[i, :, : lf[i]] = it["codes"]
    batch = {"text_ids": text, "text_lengths": lt, "codes": codes, "frame_lengths": lf}
    if any("text_offset" in it for it in items):  # frames of an audio-only voice prompt before each item's text
        batch["text_offsets"] = torch.tensor([int(it.get("text_offset", 0)) for it in items])
    return batch


class CodesTextBatches:
    """Batching shared by the tasks that read (text, codes) items (TTS, ASR): length buckets, padded collation.
    Needs `self.cfg["num_buckets"]`."""

    def make_batch_sampler(self, dataset, batch_size, seed, rank, world_size):
        return BucketBatchSampler(dataset.frames, batch_size, seed, rank, world_size, num_buckets=self.cfg["num_buckets"])

    def collate(self, items):
        return collate_tts(items)

    def batch_size_of(self, batch) -> int:
        return batch["codes"].shape[0]


def record_codec_weights(model_config, train: CodesTextDataset, val: CodesTextDataset | None) -> None:
    """Write into the model's config which codec weights made its training codes (saved with every export, and
    checked by the pipelines), after making sure the validation codes come from the same codec."""
    sources = {"train_manifests": train.codec_weights_id}
    if val is not None:
        sources["val_manifests"] = val.codec_weights_id
    model_config.codec_weights_id = same_codec_weights(sources)


@register_task("tts")
class TTSTask(CodesTextBatches, Task):
    def __init__(self, config) -> None:
        super().__init__(config)
        unknown = set(self.task_config) - set(TASK_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown tts task key(s): {', '.join(sorted(unknown))}")
        self.cfg = {**TASK_DEFAULTS, **self.task_config}
        self.tokenizer = tokenizer_for(self.cfg["model"].get("text_frontend", CATTTSConfig.text_frontend))
        self.model_config = CATTTSConfig(**{"text_vocab_size": self.tokenizer.vocab_size, **self.cfg["model"]})
        self.init_codes_id = ""  # codec weights id of the init_from model's codes ("" = none / not recorded)

    def build_models(self):
        model = CATTTSModel(self.model_config)
        if self.cfg["init_from"] is not None:
            source = CATTTSModel.from_pretrained(self.cfg["init_from"])
            if source.config.text_frontend != self.model_config.text_frontend:
                raise ValueError(f"init_from {self.cfg['init_from']} reads {source.config.text_frontend}, this run "
                                 f"{self.model_config.text_frontend}: set task.model.text_frontend to match")
            self.init_codes_id = warm_start_code_reader(  # checked against the data's in build_datasets
                model, source, str(self.cfg["init_from"]), self.cfg["init_codes_from"], self.model_config.codec_name,
                self.model_config.num_quantizers)
        elif self.cfg["init_codes_from"] is not None:
            raise ValueError("task.init_codes_from needs task.init_from: the model whose code tables it carries over")
        elif self.cfg["init_code_embeddings_from_codec"]:
            codec = CATModel.from_pretrained(self.model_config.codec_name)
            model.init_code_embeddings(codec.code_vectors(self.model_config.num_quantizers))
            log.info("code embeddings start from the code vectors of %s", self.model_config.codec_name)
        return {"model": model}

    def build_datasets(self):
        if not self.cfg["train_manifests"]:
            raise ValueError("task.train_manifests is empty: cache codes first (catcodec tokenize MANIFEST)")
        k, cap = self.model_config.num_quantizers, self.cfg["max_frames"]
        train = CodesTextDataset(self.cfg["train_manifests"], k, cap, self.tokenizer, seed=self.config.seed)
        paired = 0
        if self.cfg["pair_prob"] > 0:
            paired = train.pair_same_speaker(self.cfg["pair_prob"], cap, self.config.seed, self.cfg["prompt_text_dropout"])
        log.info("tts data: %d items (%d left out, %d paired with a clip of the same speaker, %d of them without the "
                 "first clip's text)", len(train), train.skipped, paired, sum(train.audio_only_prompt))
        val = CodesTextDataset(self.cfg["val_manifests"], k, cap, self.tokenizer) if self.cfg["val_manifests"] else None
        record_codec_weights(self.model_config, train, val)
        if self.init_codes_id not in ("", self.model_config.codec_weights_id):
            raise ValueError(
                f"init_from {self.cfg['init_from']} learnt codes of codec weights {self.init_codes_id}, but the training "
                f"codes are of {self.model_config.codec_weights_id}: tokenize again with that codec, or start fresh")
        return train, val

    def training_step(self, models: Models, batch, step: int) -> StepOutput:
        device = next(models.raw("model").parameters()).device
        until = self.cfg["guided_attention_steps"]
        out = models["model"](**{k: v.to(device) for k, v in batch.items()}, guide=until is None or step < until)
        logs = {f"loss_q{k + 1}": float(v) for k, v in enumerate(out.loss_per_level.tolist()) if k in (0, 1)}
        if out.attention_penalty is not None:
            logs["attention_penalty"] = float(out.attention_penalty)
        return StepOutput({"model": out.loss}, logs)

    @torch.no_grad()
    def validate(self, models: Models, batches: Iterable, step: int, sample_dir) -> dict[str, float]:
        model = models.raw("model")
        device = next(model.parameters()).device
        k = model.config.num_quantizers
        total, per_level, penalty, gain, order_gain, n, n_gain = 0.0, torch.zeros(k), 0.0, 0.0, 0.0, 0, 0
        space = self.tokenizer.id_of(" ")
        for batch in batches:
            batch = {key: v.to(device) for key, v in batch.items()}
            levels = torch.full((batch["text_ids"].shape[0],), k, device=device)
            # whether the model has learnt to read the text (guided or not): its frames' attention to the text
            # against a monotonic alignment, how much worse it does with another item's transcript, and with its own
            # words in reverse order (the same length: what is left when pacing to the length is not enough)
            out = model(**batch, levels=levels, output_attentions=True)
            total += float(out.loss)
            per_level += out.loss_per_level.cpu()
            penalty += float(out.attention_penalty)
            order_gain += word_order_gain(model, batch, float(out.loss_per_level[0]), levels, space)
            n += 1
            if levels.shape[0] > 1:
                gain += text_gain(model, batch, float(out.loss_per_level[0]), levels)
                n_gain += 1
        if n == 0:
            return {}
        metrics = {"loss": total / n, **{f"loss_q{i + 1}": float(v) / n for i, v in enumerate(per_level) if i in (0, k - 1)},
                   "attention_penalty": penalty / n, "word_order_gain": order_gain / n}
        if n_gain:
            metrics["text_gain"] = gain / n_gain
        return metrics

    def on_save(self, models: Models, output_dir: Path, step: int) -> None:
        models.raw("model").save_pretrained(output_dir / "model")


__all__ = ["TTSTask", "CodesTextBatches", "CodesTextDataset", "collate_tts", "record_codec_weights", "same_codec_weights"]
