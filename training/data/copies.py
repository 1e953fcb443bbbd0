"""Transformed copies of a manifest's clips, each (speaker, variant) a new speaker: what speed perturbation
(`perturb`) and re-voicing (`revoice`) share. Copies are 16-bit FLAC under OUT/audio/; existing files are kept."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np
import soundfile as sf

from catcodec.audio import load_audio_with_rate, save_audio

from .manifest import ManifestEntry, read_manifest, speaker_folder, write_manifest

V = TypeVar("V")


def copy_jobs(manifest: Path, variants: Sequence[V], alternate: bool,
              speakers: Sequence[str] = ()) -> list[tuple[int, ManifestEntry, V]]:
    """(index, entry, variant) for every entry in every variant, or with `alternate` entry i once in variant
    i mod len; with `speakers`, only the entries whose speaker starts with one of those prefixes (indexed after
    the choice). A ValueError when nothing is left."""
    entries = read_manifest(manifest)
    if speakers:
        entries = [e for e in entries if e.speaker.startswith(tuple(speakers))]
    if not entries:
        raise ValueError(f"{manifest} has no entries" + (f" of speakers {', '.join(speakers)}*" if speakers else ""))
    if alternate:
        return [(i, e, variants[i % len(variants)]) for i, e in enumerate(entries)]
    return [(i, e, v) for v in variants for i, e in enumerate(entries)]


def copied_entry(entry: ManifestEntry, speaker: str, out: Path, transform: Callable[[np.ndarray, int], np.ndarray],
                 extra: dict) -> ManifestEntry:
    """Write `transform(wav, rate)` of one clip as `speaker` under `out` (kept if it exists); its manifest entry."""
    path = out / "audio" / speaker_folder(speaker) / f"{Path(entry.audio).stem}.flac"
    if not path.exists():
        wav, rate = load_audio_with_rate(entry.audio)  # mono; clear errors on a missing, empty or corrupt clip
        save_audio(path, transform(wav, rate), rate)  # atomic 16-bit FLAC
    info = sf.info(str(path))
    return ManifestEntry(str(path), entry.text, speaker, info.samplerate, round(info.frames / info.samplerate, 4),
                         {**entry.extra, **extra, "source_audio": entry.audio})


def write_copies(entries: list[ManifestEntry], path: Path) -> str:
    """Write the copies' manifest to `path`; the line that reports it."""
    write_manifest(entries, path)
    hours = sum(e.duration for e in entries) / 3600
    return f"wrote {len(entries)} clips ({hours:.2f} h, {len({e.speaker for e in entries})} speakers) to {path}"
