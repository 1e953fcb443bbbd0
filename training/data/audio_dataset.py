"""Mixed speech datasets read from manifests: per-epoch source mixing, seeded random crops and gains, and
resampling to one rate, all decided by (seed, epoch, index) so resumed and multi-process runs are exact."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import librosa
import numpy as np
import soundfile as sf
import torch

from .manifest import ManifestEntry, read_manifest

logger = logging.getLogger("training.data")

MAX_FALLBACKS = 20  # unreadable items fall back to (i + k) % len for k = 1..MAX_FALLBACKS
PEAK = 0.99  # a random gain never pushes the peak above this
_PLAN_SALT = 0x5EED  # keeps the mixing rng apart from the per-item rng, which is seeded (seed, epoch, i)

Source = tuple[str | Path, float] | str | Path


class UnreadableAudio(Exception):
    """An audio file that cannot be used (missing, corrupt, empty, non-finite)."""


def normalise_sources(sources: Sequence[Source] | str | Path) -> list[tuple[Path, float]]:
    """[(manifest, weight)] from bare paths (weight 1.0) and [path, weight] pairs, weights checked."""
    if isinstance(sources, (str, Path)):
        sources = [sources]
    out = []
    for s in sources:
        path, weight = (s, 1.0) if isinstance(s, (str, Path)) else (s[0], float(s[1]))
        if weight < 0 or not math.isfinite(weight):
            raise ValueError(f"mixing weight of {path} must be a finite number >= 0, got {weight}")
        out.append((Path(path), weight))
    return out


def _stratified_subset(entries: list[ManifestEntry], count: int, rng: np.random.Generator) -> list[ManifestEntry]:
    """`count` entries, one drawn from each of `count` duration strata, so slot j of the subset has a similar
    duration every epoch (bucketing samplers built once stay valid) while the choice changes."""
    if count <= 0:
        return []
    order = sorted(range(len(entries)), key=lambda k: (entries[k].duration, k))
    return [entries[int(rng.choice(stratum))] for stratum in np.array_split(np.asarray(order), count)]


def _read_crop(path: str, crop_seconds: float | None, rng: np.random.Generator) -> tuple[np.ndarray, int, bool]:
    """(float32 [frames, channels], file rate, whole file?): a random `crop_seconds` window, or the whole file
    when it is shorter. Only the window is decoded; its offset is drawn from `rng` in the file's own rate."""
    try:
        with sf.SoundFile(path) as f:
            total, rate = f.frames, f.samplerate
            if total <= 0:
                raise UnreadableAudio("empty file (0 frames)")
            frames = total if crop_seconds is None else min(total, math.ceil(crop_seconds * rate))
            start = int(rng.integers(0, total - frames + 1)) if frames < total else 0
            if start:
                f.seek(start)
            data = f.read(frames, dtype="float32", always_2d=True)
    except UnreadableAudio:
        raise
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/OSError for missing or corrupt files
        raise UnreadableAudio(f"{type(e).__name__}: {e}") from None
    if data.shape[0] == 0:
        raise UnreadableAudio("no frames could be decoded")
    return data, rate, frames >= total


class AudioDataset(torch.utils.data.Dataset):
    """Utterances from weighted manifests, as mono float32 at `sampling_rate`.

    Weight w of a source: floor(w) full copies per epoch plus a seeded, duration-stratified
    round(frac(w) * n) of its entries, re-drawn each epoch from (seed, epoch) (`set_epoch`). Entries are
    filtered by manifest duration and, with `require_text`, by having a transcript. Crop offsets and gains
    come from numpy.random.default_rng((seed, epoch, index)). An unreadable file is warned about once,
    counted in `num_failed`, and its item falls back to the next index.
    """

    def __init__(self, sources: Sequence[Source] | str | Path, sampling_rate: int, crop_seconds: float | None = None,
                 gain_db: tuple[float, float] | None = None, seed: int = 0, min_seconds: float = 0.0,
                 max_seconds: float | None = None, require_text: bool = False) -> None:
        if crop_seconds is not None and crop_seconds <= 0:
            raise ValueError(f"crop_seconds must be positive, got {crop_seconds}")
        if gain_db is not None and gain_db[0] > gain_db[1]:
            raise ValueError(f"gain_db must be (low, high), got {gain_db}")
        self.sampling_rate = int(sampling_rate)
        self.crop_seconds = crop_seconds
        self.gain_db = gain_db
        self.seed = seed
        self.sources: list[tuple[Path, float, list[ManifestEntry]]] = []
        for path, weight in normalise_sources(sources):
            kept = [e for e in read_manifest(path) if self._keep(e, min_seconds, max_seconds, require_text)]
            self.sources.append((path, weight, kept))
        self.num_failed = 0
        self.failed_paths: set[str] = set()
        self.epoch = 0
        self.plan: list[ManifestEntry] = []
        self.set_epoch(0)
        if not self.plan:
            raise ValueError(f"no usable entries in {[str(p) for p, _, _ in self.sources]} after filtering "
                             f"(min_seconds={min_seconds}, max_seconds={max_seconds}, require_text={require_text})")

    @staticmethod
    def _keep(e: ManifestEntry, min_seconds: float, max_seconds: float | None, require_text: bool) -> bool:
        if e.duration < min_seconds or (max_seconds is not None and e.duration > max_seconds):
            return False
        return not require_text or bool(e.text and e.text.strip())

    def set_epoch(self, epoch: int) -> None:
        """Re-draw the fractional parts of the mixing weights for `epoch`; the length never changes."""
        self.epoch = epoch
        plan: list[ManifestEntry] = []
        for k, (_, weight, entries) in enumerate(self.sources):
            whole, frac = divmod(weight, 1.0)
            plan.extend(entries * int(whole))
            rng = np.random.default_rng((self.seed, epoch, k, _PLAN_SALT))
            plan.extend(_stratified_subset(entries, round(frac * len(entries)), rng))
        self.plan = plan

    def __len__(self) -> int:
        return len(self.plan)

    def entry(self, index: int) -> ManifestEntry:
        """The manifest entry item `index` reads this epoch."""
        return self.plan[index]

    @property
    def durations(self) -> list[float]:
        """Seconds of audio each item will return this epoch (manifest duration, capped by the crop), for
        bucketing samplers."""
        cap = math.inf if self.crop_seconds is None else self.crop_seconds
        return [min(e.duration, cap) for e in self.plan]

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.plan)
        for k in range(MAX_FALLBACKS + 1):
            j = (index + k) % n
            entry = self.plan[j]
            if entry.audio in self.failed_paths:
                continue
            try:
                audio, whole = self._load(entry, j)
            except UnreadableAudio as e:
                self._record_failure(entry.audio, str(e))
                continue
            # a crop's words are unknown: its transcript would teach a text loss the wrong words
            text = entry.text if whole else None
            return {"audio": audio, "text": text, "speaker": entry.speaker, "path": entry.audio, "index": j}
        raise RuntimeError(f"too many unreadable files: items {index}..{index + MAX_FALLBACKS} (mod {n}) all "
                           f"failed; {self.num_failed} unreadable files so far")

    def _record_failure(self, path: str, reason: str) -> None:
        if path not in self.failed_paths:
            self.failed_paths.add(path)
            self.num_failed += 1
            logger.warning("skipping unreadable audio %s: %s", path, reason)

    def _load(self, entry: ManifestEntry, index: int) -> tuple[torch.Tensor, bool]:
        """(float32 [T] mono at `sampling_rate`, whole file?): crop, down-mix, resample, gain; fixed by
        (seed, epoch, index)."""
        rng = np.random.default_rng((self.seed, self.epoch, index))
        data, rate, whole = _read_crop(entry.audio, self.crop_seconds, rng)
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        cropped = self.crop_seconds is not None and data.shape[0] == math.ceil(self.crop_seconds * rate)
        if rate != self.sampling_rate:
            mono = librosa.resample(mono, orig_sr=rate, target_sr=self.sampling_rate, res_type="soxr_hq")
        if cropped:  # exact crop length at the target rate
            mono = librosa.util.fix_length(mono, size=round(self.crop_seconds * self.sampling_rate))
        if not np.all(np.isfinite(mono)):
            raise UnreadableAudio("non-finite samples")
        if self.gain_db is not None:
            mono = mono * np.float32(10.0 ** (rng.uniform(*self.gain_db) / 20.0))
            peak = float(np.max(np.abs(mono))) if mono.size else 0.0
            if peak > PEAK:
                mono = mono * np.float32(PEAK / peak)
        return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32)), whole


@dataclass
class AudioBatch:
    """A padded batch: `audio` [B, 1, T] zero-padded on the right, `padding_mask` [B, T] (1 = real sample)."""

    audio: torch.Tensor
    padding_mask: torch.Tensor
    lengths: torch.Tensor
    texts: list[str | None]
    speakers: list[str]
    paths: list[str]

    def __len__(self) -> int:
        return self.audio.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "AudioBatch":
        """A copy with the tensors on `device`."""
        return AudioBatch(self.audio.to(device, non_blocking=non_blocking),
                          self.padding_mask.to(device, non_blocking=non_blocking),
                          self.lengths.to(device, non_blocking=non_blocking),
                          list(self.texts), list(self.speakers), list(self.paths))


def collate_audio(items: list[dict[str, Any]]) -> AudioBatch:
    """Stack AudioDataset items, padding to the longest."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    lengths = torch.tensor([it["audio"].shape[-1] for it in items], dtype=torch.long)
    longest = int(lengths.max())
    audio = torch.zeros(len(items), 1, longest, dtype=torch.float32)
    for b, it in enumerate(items):
        audio[b, 0, : lengths[b]] = it["audio"]
    padding_mask = (torch.arange(longest)[None, :] < lengths[:, None]).long()
    return AudioBatch(audio, padding_mask, lengths, [it["text"] for it in items],
                      [it["speaker"] for it in items], [it["path"] for it in items])
