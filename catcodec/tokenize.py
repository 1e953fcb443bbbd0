"""Encode every clip of a manifest once and cache its codes, for the models that train on tokens (TTS, ASR).

    catcodec tokenize data/manifests/train.jsonl --num-quantizers 16     # -> train.codes/ + train.codes.jsonl

Clips are encoded in padded batches (a padded batch gives each item exactly its own codes), written as
codes files (`catcodec.codes_file`) into a folder beside the manifest, and listed in a new manifest that
keeps every original field and adds `codes` (path relative to it) and `num_frames`. Unreadable clips are
skipped with a warning and counted; existing codes files made by the same model (config hash and weights id) are reused.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .atomic import atomic_write
from .audio import AudioError, load_audio
from .codes_file import CodesFile, CodesFileError, read_codes, write_codes
from .modeling_cat import CATModel

log = logging.getLogger("catcodec.tokenize")


@dataclass
class TokenizeReport:
    manifest: Path
    written: int = 0
    reused: int = 0
    failed: int = 0
    frames: int = 0


def _entries(manifest: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                row["audio"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{manifest}:{n}: not a manifest line with an 'audio' field ({exc})") from None
            rows.append(row)
    return rows


def tokenize_manifest(
    model: CATModel,
    manifest: str | Path,
    num_quantizers: int | None = None,
    out_dir: str | Path | None = None,
    model_name: str = "",
    batch_size: int = 8,
    progress: bool = True,
) -> TokenizeReport:
    """Cache the codes of every clip of `manifest`; returns where the new manifest is and what was done."""
    manifest = Path(manifest)
    n = model.quantizer.check_num_quantizers(num_quantizers)
    out_dir = Path(out_dir) if out_dir is not None else manifest.with_name(manifest.stem + ".codes")
    out_manifest = out_dir.parent / (out_dir.name + ".jsonl")  # train.codes/ -> train.codes.jsonl
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _entries(manifest)
    report = TokenizeReport(manifest=out_manifest)
    sr = model.config.sampling_rate
    ours, weights = model.config.architecture_hash(), model.codes_fingerprint()
    device = next(model.parameters()).device
    kept: list[dict] = []
    pending: list[tuple[dict, Path, torch.Tensor]] = []

    def flush() -> None:
        if not pending:
            return
        lengths = torch.tensor([w.numel() for _, _, w in pending])
        batch = torch.zeros(len(pending), 1, int(lengths.max()))
        for i, (_, _, w) in enumerate(pending):
            batch[i, 0, : w.numel()] = w
        mask = (torch.arange(batch.shape[-1])[None] < lengths[:, None]).long()
        with torch.inference_mode():
            enc = model.encode(batch.to(device), mask.to(device), num_quantizers=n)
        for i, (row, target, w) in enumerate(pending):
            frames = int(enc.code_lengths[i])
            write_codes(target, CodesFile.from_model(enc.audio_codes[i, :, :frames], w.numel(), model, model_name, weights))
            kept.append({**row, "codes": os.path.relpath(target, out_manifest.parent), "num_frames": frames})
            report.written += 1
            report.frames += frames
        pending.clear()

    for index, row in enumerate(tqdm(rows, desc="tokenize", unit="clip", disable=not progress)):
        audio = Path(row["audio"])
        audio = audio if audio.is_absolute() else manifest.parent / audio
        target = out_dir / f"{index:07d}_{audio.stem}.npz"
        if target.exists():
            try:
                cached = read_codes(target)
                if cached.config_hash == ours and cached.weights_id == weights and cached.num_quantizers >= n:
                    frames = cached.codes.shape[1]
                    kept.append({**row, "codes": os.path.relpath(target, out_manifest.parent), "num_frames": frames})
                    report.reused += 1
                    report.frames += frames
                    continue
            except CodesFileError:
                pass  # unreadable cache: encode again
        try:
            wav = torch.from_numpy(load_audio(audio, sr))
        except AudioError as exc:
            log.warning("skipping %s", exc)
            report.failed += 1
            continue
        pending.append((row, target, wav))
        if len(pending) == batch_size:
            flush()
    flush()
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write(out_manifest, lambda f: f.write(text.encode("utf-8")))
    return report


__all__ = ["tokenize_manifest", "TokenizeReport"]
