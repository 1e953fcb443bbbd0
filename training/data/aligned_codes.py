"""Audio with codes that line up with it frame by frame, cropped together: what a decoder is trained on when its
input codes come from elsewhere (e.g. a TTS model's teacher-forced predictions, `python -m tts.teacher_forced`).

A manifest line needs `audio` and `codes` (a `.npz` with a [K, frames] `codes` array, as `catcodec tokenize`
writes), relative to the manifest or absolute. Items are random crops of `crop_frames` frames (seeded by
(seed, epoch, index)): codes [K, crop_frames] and the audio samples those frames cover.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from catcodec.audio import load_audio

from .audio_dataset import Source, normalise_sources


def read_aligned_rows(sources: Sequence[Source] | str | Path, min_frames: int) -> list[dict[str, Any]]:
    """Manifest lines with audio and codes of at least `min_frames` frames (paths made absolute, the manifest's
    own path added as `manifest`); a weighted source ([path, 2.0]) is read that many times over (a fraction: that
    share of its lines, the first ones)."""
    rows: list[dict[str, Any]] = []
    for manifest, weight in normalise_sources(sources):
        own = []
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            if "audio" not in row or "codes" not in row or int(row.get("num_frames", 0)) < min_frames:
                continue
            row["audio"] = str(manifest.parent / row["audio"])
            row["codes"] = str(manifest.parent / row["codes"])
            row["manifest"] = str(manifest)
            own.append(row)
        whole, frac = divmod(weight, 1.0)
        rows.extend(own * int(whole) + own[: round(frac * len(own))])
    return rows


class AlignedCodesDataset(torch.utils.data.Dataset):
    """Frame-aligned crops of (audio, codes): item i is {"audio": [crop_frames * hop], "codes": [K, crop_frames],
    "speaker", "path", "text": None}. Audio past the file's end (its last frame is partial) is zeros."""

    def __init__(self, sources: Sequence[Source] | str | Path, sampling_rate: int, hop: int, crop_frames: int,
                 seed: int = 0) -> None:
        if crop_frames < 1:
            raise ValueError(f"crop_frames must be at least 1, got {crop_frames}")
        self.rows = read_aligned_rows(sources, crop_frames)
        if not self.rows:
            raise ValueError(f"no lines with audio and at least {crop_frames} frames of codes in {sources}")
        self.sampling_rate = sampling_rate
        self.hop = hop
        self.crop_frames = crop_frames
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        with np.load(row["codes"], allow_pickle=False) as f:
            codes = f["codes"].astype(np.int64)
        frames = codes.shape[1]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        start = int(rng.integers(0, frames - self.crop_frames + 1))
        audio = load_audio(row["audio"], self.sampling_rate)
        segment = np.zeros(self.crop_frames * self.hop, dtype=np.float32)
        piece = audio[start * self.hop : (start + self.crop_frames) * self.hop]
        segment[: piece.size] = piece
        return {"audio": torch.from_numpy(segment), "codes": torch.from_numpy(codes[:, start : start + self.crop_frames]),
                "text": None, "speaker": row.get("speaker"), "path": row["audio"]}


__all__ = ["AlignedCodesDataset", "read_aligned_rows"]
